//! The bundled job handlers against a real Redis: `analytics.*`, `moderation.text`, and
//! the `video.*` handlers with a real ffmpeg.

mod handlers_analytics;
mod handlers_moderation;
mod handlers_video;
