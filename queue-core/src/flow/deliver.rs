//! Delivering children's outcomes to their parents.
