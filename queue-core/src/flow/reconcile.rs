//! Parents that wait too long: looking up their children.
