//! Configuration shared by every jobq binary: where Redis is, the key prefix, and
//! what a producer does when Redis is down.

use std::path::PathBuf;

use percent_encoding::{utf8_percent_encode, AsciiSet, NON_ALPHANUMERIC};

use crate::error::{Error, Result};
use crate::validate::validate_prefix;

/// What a producer does when Redis cannot be reached (`JOBQ_FALLBACK`).
#[derive(Debug, Clone, Copy, PartialEq, Eq, Default)]
pub enum Fallback {
    /// Run the handler now, in-process.
    #[default]
    Inline,
    /// Append the job to a durable local file, replayed when Redis is back.
    Spool,
    /// Return an error naming the Redis address.
    Error,
}

impl Fallback {
    /// `inline`, `spool` or `error`: the `JOBQ_FALLBACK` value.
    pub fn as_str(self) -> &'static str {
        match self {
            Fallback::Inline => "inline",
            Fallback::Spool => "spool",
            Fallback::Error => "error",
        }
    }
}

impl std::fmt::Display for Fallback {
    fn fmt(&self, f: &mut std::fmt::Formatter<'_>) -> std::fmt::Result {
        f.write_str(self.as_str())
    }
}

impl std::str::FromStr for Fallback {
    type Err = Error;
    fn from_str(s: &str) -> Result<Self> {
        match s {
            "inline" => Ok(Fallback::Inline),
            "spool" => Ok(Fallback::Spool),
            "error" => Ok(Fallback::Error),
            other => Err(Error::Config(format!(
                "JOBQ_FALLBACK={other:?}: use inline, spool or error"
            ))),
        }
    }
}

/// Connection and naming settings.
#[derive(Debug, Clone)]
pub struct Config {
    redis_url: Option<String>,
    prefix: String,
    /// Producer behaviour when Redis is down.
    pub fallback: Fallback,
    /// Where spooled jobs are written.
    pub spool_dir: PathBuf,
    /// Size caps of what one job may store.
    pub caps: JobCaps,
}

/// Size caps of one job, checked at every add (`JOBQ_MAX_DATA_BYTES`, `JOBQ_MAX_OPTS_BYTES`).
/// Workers also refuse to run a stored job over the data cap (it fails alone), so one
/// oversized record can never make a claim or a listing block Redis.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub struct JobCaps {
    /// Most bytes of a job's data as JSON (default 1 MiB).
    pub max_data_bytes: usize,
    /// Most bytes of a job's stored options as JSON (default 1 MiB).
    pub max_opts_bytes: usize,
}

impl JobCaps {
    /// The default cap of data and of options: 1 MiB each.
    pub const DEFAULT_BYTES: usize = 1 << 20;
    /// The largest cap that may be configured (64 MiB): past it one job's claim or read
    /// would block Redis for longer than any other call.
    pub const MAX_BYTES: usize = 64 << 20;

    /// Checks the size of a job's data JSON.
    pub fn check_data(&self, len: usize) -> Result<()> {
        if len > self.max_data_bytes {
            return Err(Error::TooLarge {
                what: "data",
                size: len,
                limit: self.max_data_bytes,
                env: "JOBQ_MAX_DATA_BYTES",
            });
        }
        Ok(())
    }

    /// Checks the size of a job's data as the compact JSON it is stored as; returns the size.
    pub fn check_data_value(&self, data: &serde_json::Value) -> Result<usize> {
        Ok(self.encode_data(data)?.len())
    }

    /// A job's data as the compact JSON it is stored as, checked against the data cap in
    /// the same pass: the text is kept only up to the cap, so an oversized value is measured
    /// (and refused, naming its size) without being built.
    pub fn encode_data(&self, data: &serde_json::Value) -> Result<String> {
        struct Capped {
            text: Vec<u8>,
            len: usize,
            cap: usize,
        }
        impl std::io::Write for Capped {
            fn write(&mut self, buf: &[u8]) -> std::io::Result<usize> {
                self.len += buf.len();
                if self.len <= self.cap {
                    self.text.extend_from_slice(buf);
                }
                Ok(buf.len())
            }
            fn flush(&mut self) -> std::io::Result<()> {
                Ok(())
            }
        }
        let mut out = Capped {
            text: Vec::new(),
            len: 0,
            cap: self.max_data_bytes,
        };
        serde_json::to_writer(&mut out, data)?;
        self.check_data(out.len)?;
        String::from_utf8(out.text)
            .map_err(|e| Error::Protocol(format!("job data encoded as invalid UTF-8: {e}")))
    }

    /// Checks the size of a job's options JSON.
    pub fn check_opts(&self, len: usize) -> Result<()> {
        if len > self.max_opts_bytes {
            return Err(Error::TooLarge {
                what: "options",
                size: len,
                limit: self.max_opts_bytes,
                env: "JOBQ_MAX_OPTS_BYTES",
            });
        }
        Ok(())
    }
}

impl Default for JobCaps {
    fn default() -> Self {
        JobCaps {
            max_data_bytes: JobCaps::DEFAULT_BYTES,
            max_opts_bytes: JobCaps::DEFAULT_BYTES,
        }
    }
}

fn parse_cap(name: &str, value: &str) -> Result<usize> {
    match value.trim().parse::<usize>() {
        Ok(n) if (1..=JobCaps::MAX_BYTES).contains(&n) => Ok(n),
        _ => Err(Error::Config(format!(
            "{name}={value:?}: use a number of bytes from 1 to {}",
            JobCaps::MAX_BYTES
        ))),
    }
}

impl Default for Config {
    fn default() -> Self {
        Self {
            redis_url: None,
            prefix: "jobq".into(),
            fallback: Fallback::Inline,
            spool_dir: PathBuf::from("./.jobq-spool"),
            caps: JobCaps::default(),
        }
    }
}

impl Config {
    /// A configuration for the Redis at `url` with default prefix and fallback.
    pub fn new(url: impl Into<String>) -> Result<Self> {
        Config::default().with_redis_url(url)
    }

    /// Reads `REDIS_URL` (or the split `REDIS_HOST`… form), `JOBQ_PREFIX`, `JOBQ_FALLBACK`
    /// `JOBQ_SPOOL_DIR`, `JOBQ_MAX_DATA_BYTES` and `JOBQ_MAX_OPTS_BYTES` from the environment.
    pub fn from_env() -> Result<Self> {
        Self::from_lookup(|name| std::env::var(name).ok().filter(|v| !v.is_empty()))
    }

    /// Like [`Config::from_env`], reading variables through `get` (testable).
    pub fn from_lookup(get: impl Fn(&str) -> Option<String>) -> Result<Self> {
        let mut cfg = Config::default();
        if let Some(url) = get("REDIS_URL") {
            cfg = cfg.with_redis_url(url)?;
        } else if let Some(host) = get("REDIS_HOST") {
            let port = match get("REDIS_PORT") {
                Some(p) => p
                    .parse::<u16>()
                    .map_err(|_| Error::Config(format!("REDIS_PORT={p:?} is not a port number")))?,
                None => 6379,
            };
            let tls = match get("REDIS_TLS").as_deref() {
                None | Some("false" | "0" | "no") => false,
                Some("true" | "1" | "yes") => true,
                Some(other) => {
                    return Err(Error::Config(format!(
                        "REDIS_TLS={other:?}: use true or false"
                    )))
                }
            };
            let url = build_url(
                &host,
                port,
                get("REDIS_USERNAME").as_deref(),
                get("REDIS_PASSWORD").as_deref(),
                tls,
            );
            cfg = cfg.with_redis_url(url)?;
        }
        if let Some(prefix) = get("JOBQ_PREFIX") {
            cfg = cfg.with_prefix(prefix)?;
        }
        if let Some(mode) = get("JOBQ_FALLBACK") {
            cfg.fallback = mode.parse()?;
        }
        if let Some(dir) = get("JOBQ_SPOOL_DIR") {
            cfg.spool_dir = PathBuf::from(dir);
        }
        if let Some(v) = get("JOBQ_MAX_DATA_BYTES") {
            cfg.caps.max_data_bytes = parse_cap("JOBQ_MAX_DATA_BYTES", &v)?;
        }
        if let Some(v) = get("JOBQ_MAX_OPTS_BYTES") {
            cfg.caps.max_opts_bytes = parse_cap("JOBQ_MAX_OPTS_BYTES", &v)?;
        }
        Ok(cfg)
    }

    /// Sets the Redis URL (`redis://` or `rediss://`), overriding the environment.
    pub fn with_redis_url(mut self, url: impl Into<String>) -> Result<Self> {
        let url = url.into();
        if !(url.starts_with("redis://") || url.starts_with("rediss://")) {
            return Err(Error::Config(format!(
                "Redis URL {:?} must start with redis:// or rediss://",
                mask_url(&url)
            )));
        }
        let seeds = seed_urls(&url);
        for seed in &seeds {
            redis::Client::open(seed.as_str()).map_err(|e| {
                Error::Config(format!("Redis URL {:?} is invalid: {e}", mask_url(seed)))
            })?;
        }
        // a cluster's seeds must agree on TLS, credentials and db: the cluster client
        // checks, here rather than at the first connect
        if let Some(odd) = seeds
            .iter()
            .find(|s| s.starts_with("rediss://") != seeds[0].starts_with("rediss://"))
        {
            return Err(Error::Config(format!(
                "Redis URL seeds {:?} and {:?} mix redis:// and rediss://: use one for all",
                mask_url(&seeds[0]),
                mask_url(odd)
            )));
        }
        if seeds.len() > 1 {
            redis::cluster::ClusterClient::new(seeds.clone()).map_err(|e| {
                Error::Config(format!(
                    "Redis URL {:?}: its seeds do not agree: {e}",
                    mask_urls(&url)
                ))
            })?;
        }
        self.redis_url = Some(url);
        Ok(self)
    }

    /// Sets the key prefix, overriding `JOBQ_PREFIX`.
    pub fn with_prefix(mut self, prefix: impl Into<String>) -> Result<Self> {
        let prefix = prefix.into();
        validate_prefix(&prefix)?;
        self.prefix = prefix;
        Ok(self)
    }

    /// The Redis URL, if Redis is configured.
    pub fn redis_url(&self) -> Option<&str> {
        self.redis_url.as_deref()
    }

    /// The Redis URL with any password replaced by `***`, or `not configured`.
    pub fn masked_url(&self) -> String {
        self.redis_url
            .as_deref()
            .map(mask_urls)
            .unwrap_or_else(|| "not configured".into())
    }

    /// Key prefix (`jobq` by default).
    pub fn prefix(&self) -> &str {
        &self.prefix
    }
}

/// The URLs of a Redis URL that names several seed nodes of a cluster, comma-separated:
/// whole URLs (`redis://h1:7000,redis://h2:7001`), or one URL with a list of hosts
/// (`rediss://user:pass@h1:7000,h2:7001/#insecure`: each host gets the URL's scheme,
/// credentials, path and options). A password may hold commas. One URL gives itself.
pub fn seed_urls(url: &str) -> Vec<String> {
    let whole = whole_urls(url);
    if whole.len() > 1 {
        return whole.into_iter().map(str::to_string).collect();
    }
    let Some(scheme_end) = url.find("://") else {
        return vec![url.to_string()];
    };
    let after = &url[scheme_end + 3..];
    // credentials end at the last `@` (an unencoded one cannot occur in them); the hosts
    // at the path, the query or the fragment
    let hosts_start = after.rfind('@').map_or(0, |at| at + 1);
    let hosts_len = after[hosts_start..]
        .find(['/', '?', '#'])
        .unwrap_or(after.len() - hosts_start);
    let hosts = &after[hosts_start..hosts_start + hosts_len];
    if !hosts.contains(',') {
        return vec![url.to_string()];
    }
    let lead = &url[..scheme_end + 3 + hosts_start];
    let tail = &after[hosts_start + hosts_len..];
    hosts
        .split(',')
        .map(str::trim)
        .filter(|h| !h.is_empty())
        .map(|h| format!("{lead}{h}{tail}"))
        .collect()
}

/// [`mask_url`] of each whole URL of a (possibly comma-separated) Redis URL.
fn mask_urls(url: &str) -> String {
    whole_urls(url)
        .into_iter()
        .map(mask_url)
        .collect::<Vec<_>>()
        .join(",")
}

/// `url` cut where a comma starts another whole `redis://` or `rediss://` URL.
fn whole_urls(url: &str) -> Vec<&str> {
    let mut out = Vec::new();
    let mut start = 0;
    for (i, _) in url.match_indices(',') {
        let next = url[i + 1..].trim_start();
        if next.starts_with("redis://") || next.starts_with("rediss://") {
            out.push(url[start..i].trim());
            start = i + 1;
        }
    }
    out.push(url[start..].trim());
    out
}

/// Replaces the password of a `redis://user:pass@host` URL with `***`.
pub fn mask_url(url: &str) -> String {
    // Credentials end at the last `@` (a password may hold `/`, `?`, `#` or `,`, which must
    // not end the search; a host never holds `@`, so a query that does is masked, safely,
    // too) and start after the first scheme before it, or at the start of a URL pasted
    // without one. A seed list with several credentials shows as one masked URL.
    let Some(last_at) = url.rfind('@') else {
        return url.to_string();
    };
    let start = url[..last_at].find("://").map_or(0, |i| i + 3);
    let after = &url[start..];
    let at = last_at - start;
    let userinfo = &after[..at];
    let masked_userinfo = match userinfo.find(':') {
        Some(colon) => format!("{}:***", &userinfo[..colon]),
        // `redis://secret@host` puts the password in the user part
        None if !userinfo.is_empty() => "***".to_string(),
        None => String::new(),
    };
    format!("{}{}@{}", &url[..start], masked_userinfo, &after[at + 1..])
}

fn build_url(host: &str, port: u16, user: Option<&str>, pass: Option<&str>, tls: bool) -> String {
    let scheme = if tls { "rediss" } else { "redis" };
    let userinfo = match (user, pass) {
        (Some(u), Some(p)) => format!("{}:{}@", percent_encode(u), percent_encode(p)),
        (None, Some(p)) => format!(":{}@", percent_encode(p)),
        (Some(u), None) => format!("{}@", percent_encode(u)),
        (None, None) => String::new(),
    };
    let host = if host.contains(':') && !host.starts_with('[') {
        format!("[{host}]")
    } else {
        host.to_string()
    };
    format!("{scheme}://{userinfo}{host}:{port}")
}

/// What stays as it is in a URL's user info: RFC 3986's unreserved characters.
const UNRESERVED: &AsciiSet = &NON_ALPHANUMERIC
    .remove(b'-')
    .remove(b'.')
    .remove(b'_')
    .remove(b'~');

fn percent_encode(s: &str) -> String {
    utf8_percent_encode(s, UNRESERVED).to_string()
}

#[cfg(test)]
mod tests {
    use super::*;
    use std::collections::HashMap;

    #[test]
    fn data_is_encoded_once_and_refused_over_the_cap_naming_its_size() {
        let caps = JobCaps {
            max_data_bytes: 30,
            max_opts_bytes: 30,
        };
        let small = serde_json::json!({"a": [1, "x"], "b": "é"});
        assert_eq!(
            caps.encode_data(&small).unwrap(),
            serde_json::to_string(&small).unwrap()
        );
        let big = serde_json::json!({"pad": "x".repeat(100)});
        match caps.encode_data(&big) {
            Err(Error::TooLarge { size, limit, .. }) => {
                assert_eq!(size, serde_json::to_string(&big).unwrap().len());
                assert_eq!(limit, 30);
            }
            other => panic!("{other:?}"),
        }
    }

    fn lookup(vars: &[(&str, &str)]) -> impl Fn(&str) -> Option<String> {
        let map: HashMap<String, String> = vars
            .iter()
            .map(|(k, v)| (k.to_string(), v.to_string()))
            .collect();
        move |k| map.get(k).cloned()
    }

    #[test]
    fn nothing_set_means_not_configured() {
        let cfg = Config::from_lookup(lookup(&[])).unwrap();
        assert!(cfg.redis_url().is_none());
        assert_eq!(cfg.masked_url(), "not configured");
        assert_eq!(cfg.prefix(), "jobq");
        assert_eq!(cfg.fallback, Fallback::Inline);
    }

    #[test]
    fn url_wins_over_split_form() {
        let cfg = Config::from_lookup(lookup(&[
            ("REDIS_URL", "redis://a:1/2"),
            ("REDIS_HOST", "b"),
        ]))
        .unwrap();
        assert_eq!(cfg.redis_url(), Some("redis://a:1/2"));
    }

    #[test]
    fn split_form_builds_an_encoded_tls_url() {
        let cfg = Config::from_lookup(lookup(&[
            ("REDIS_HOST", "cache.example"),
            ("REDIS_PORT", "6380"),
            ("REDIS_USERNAME", "default"),
            ("REDIS_PASSWORD", "p@ss:w/rd"),
            ("REDIS_TLS", "true"),
        ]))
        .unwrap();
        assert_eq!(
            cfg.redis_url(),
            Some("rediss://default:p%40ss%3Aw%2Frd@cache.example:6380")
        );
        // unreserved characters as they are, every other byte (UTF-8 too) encoded
        assert_eq!(percent_encode("aZ09-._~ %+é"), "aZ09-._~%20%25%2B%C3%A9");
        assert_eq!(cfg.masked_url(), "rediss://default:***@cache.example:6380");
    }

    #[test]
    fn bad_values_are_named() {
        let err = Config::from_lookup(lookup(&[("REDIS_HOST", "h"), ("REDIS_PORT", "70000")]))
            .unwrap_err()
            .to_string();
        assert!(err.contains("70000"), "{err}");
        let err = Config::from_lookup(lookup(&[("REDIS_URL", "http://x")]))
            .unwrap_err()
            .to_string();
        assert!(err.contains("http://x"), "{err}");
        let err = Config::from_lookup(lookup(&[("JOBQ_FALLBACK", "maybe")]))
            .unwrap_err()
            .to_string();
        assert!(err.contains("maybe"), "{err}");
        let err = Config::from_lookup(lookup(&[("JOBQ_PREFIX", "a b")]))
            .unwrap_err()
            .to_string();
        assert!(err.contains("a b"), "{err}");
    }

    #[test]
    fn several_hosts_are_cluster_seeds_sharing_the_urls_credentials_and_options() {
        assert_eq!(seed_urls("redis://h:1/0"), ["redis://h:1/0"]);
        assert_eq!(
            seed_urls("redis://u:p@a:1,b:2"),
            ["redis://u:p@a:1", "redis://u:p@b:2"]
        );
        assert_eq!(
            seed_urls("rediss://u:p@a:1, b:2/#insecure"),
            ["rediss://u:p@a:1/#insecure", "rediss://u:p@b:2/#insecure"]
        );
        assert_eq!(
            seed_urls("redis://u:p@a:1, redis://v:q@c:3"),
            ["redis://u:p@a:1", "redis://v:q@c:3"]
        );
        // ...but a cluster's seeds must agree on credentials
        let differ = Config::default()
            .with_redis_url("redis://u:p@a:1, redis://v:q@c:3")
            .unwrap_err()
            .to_string();
        assert!(differ.contains("do not agree"), "{differ}");
        assert!(
            !differ.contains(":p@") && !differ.contains(":q@"),
            "{differ}"
        );
        assert!(Config::default()
            .with_redis_url("rediss://u:p@a:1,b:2/#insecure")
            .is_ok());
        // a trailing comma leaves one seed, which is then the URL used
        assert_eq!(seed_urls("redis://a:1,"), ["redis://a:1"]);
        // a password holding `/` is masked too
        assert_eq!(
            mask_url("redis://:abc/def@h:6379/0"),
            "redis://:***@h:6379/0"
        );
        // a comma in a password is not a host list
        assert_eq!(seed_urls("redis://:se,cret@h:1"), ["redis://:se,cret@h:1"]);
        let cfg = Config::default()
            .with_redis_url("redis://:se,cret@127.0.0.1:1")
            .unwrap();
        assert_eq!(cfg.masked_url(), "redis://:***@127.0.0.1:1");
        let cfg = Config::default()
            .with_redis_url("redis://u:secret@a:1,b:2")
            .unwrap();
        assert_eq!(cfg.masked_url(), "redis://u:***@a:1,b:2");
        let cfg = Config::default()
            .with_redis_url("redis://u:s1@a:1,redis://u:s1@b:2")
            .unwrap();
        assert_eq!(cfg.masked_url(), "redis://u:***@a:1,redis://u:***@b:2");
        assert!(Config::default().with_redis_url("redis://a:1,b:x").is_err());
        let mixed = Config::default()
            .with_redis_url("redis://a:1,rediss://b:2")
            .unwrap_err()
            .to_string();
        assert!(mixed.contains("mix redis:// and rediss://"), "{mixed}");
    }

    #[test]
    fn masks_passwords_in_every_form() {
        assert_eq!(mask_url("redis://u:secret@h:1/0"), "redis://u:***@h:1/0");
        assert_eq!(mask_url("redis://:secret@h"), "redis://:***@h");
        assert_eq!(mask_url("redis://secret@h"), "redis://***@h");
        assert_eq!(mask_url("redis://h:6379"), "redis://h:6379");
        assert_eq!(mask_url("rediss://u:a@b@h"), "rediss://u:***@h");
    }
}
