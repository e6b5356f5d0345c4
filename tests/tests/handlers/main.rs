//! The bundled job handlers against a real Redis: `analytics.*`, `moderation.text`, the
//! `video.*` handlers with a real ffmpeg, and the handlers that are flows' parents
//! (`video.publish`, `diag.collect`).

mod handlers_analytics;
mod handlers_flow;
mod handlers_moderation;
mod handlers_video;
