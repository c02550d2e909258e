//! Optional HTTP basic auth for `/metrics`, like the `basic_auth_users` of Prometheus'
//! exporter-toolkit web configuration: `server.metrics_users_file` lists `user:bcrypt-hash` lines.
//!
//! bcrypt is slow on purpose (tens of milliseconds at cost 10), and Prometheus scrapes every 15 s with the
//! same credentials, so a verified (user, password) pair is remembered: the key is a SHA-256 over
//! the user, the stored hash and the password, so the password itself is never kept, and a changed
//! hash misses. Only successes are remembered, so that nobody without a password can evict the
//! scraper's entry, and the cache is bounded ([`CACHE_ENTRIES`]) and emptied by a reload.
//!
//! Timing does not tell whether a user exists: an unknown user's password is verified against a
//! dummy hash of the highest cost in the file, so every refusal costs one bcrypt. bcrypt runs off
//! the async workers, one at a time (the turn is held until the computation ends, even when the
//! client has gone), so a flood of wrong passwords takes at most one core.

use std::collections::{HashMap, HashSet};
use std::path::Path;
use std::sync::{Arc, Mutex, RwLock};

use base64::Engine as _;
use hyper::header::HeaderValue;

/// At most this many verified credentials are remembered; a scrape setup has a handful.
pub const CACHE_ENTRIES: usize = 64;

/// The realm of the `WWW-Authenticate` challenge.
pub const CHALLENGE: &str = "Basic realm=\"backlogd\"";

/// The users allowed to scrape `/metrics`, shared by the server and the reload task.
pub struct MetricsUsers {
    users: RwLock<Arc<Users>>,
    /// Digests of verified (user, hash, password) triples.
    verified: Mutex<HashSet<[u8; 32]>>,
    /// One bcrypt computation at a time.
    bcrypt_turn: Arc<tokio::sync::Mutex<()>>,
}

/// The contents of a `server.metrics_users_file`.
#[derive(Debug)]
pub struct Users {
    hashes: HashMap<String, String>,
    /// A well-formed hash that no password matches, at the highest cost of `hashes`.
    dummy: String,
}

impl Users {
    /// Reads `path`: one `user:bcrypt-hash` a line; blank lines and lines starting with `#` are
    /// ignored.
    ///
    /// # Errors
    ///
    /// When the file cannot be read, holds no user, or has a line that is not `user:hash` with a
    /// bcrypt hash (`$2a$`, `$2b$`, `$2x$` or `$2y$`, cost 4 to 31) or repeats a user; naming the
    /// file and the line, never quoting a hash.
    pub fn read(path: &Path) -> anyhow::Result<Users> {
        let text = std::fs::read_to_string(path).map_err(|e| {
            anyhow::anyhow!(
                "server.metrics_users_file: cannot read {}: {e}",
                path.display()
            )
        })?;
        Users::parse(&text).map_err(|problem| {
            anyhow::anyhow!("server.metrics_users_file: {}{problem}", path.display())
        })
    }

    /// Parses the text of a users file; the error's text starts with ` line N: ` or ` holds`.
    fn parse(text: &str) -> Result<Users, UsersFileError> {
        let mut hashes = HashMap::new();
        let mut highest_cost = 0;
        for (index, line) in text.lines().enumerate() {
            let number = index + 1;
            let line = line.trim();
            if line.is_empty() || line.starts_with('#') {
                continue;
            }
            let bad = |why: &str| UsersFileError::BadLine {
                number,
                why: why.to_owned(),
            };
            let Some((user, hash)) = line.split_once(':') else {
                return Err(bad("no `:`"));
            };
            let (user, hash) = (user.trim(), hash.trim());
            if user.is_empty() {
                return Err(bad("the user name is empty"));
            }
            let parts: bcrypt::HashParts = hash
                .parse()
                .map_err(|e| bad(&format!("the hash is not a bcrypt hash ({e})")))?;
            let cost = parts.get_cost();
            if !(4..=31).contains(&cost) {
                return Err(bad(&format!(
                    "the hash has cost {cost}; bcrypt allows 4 to 31"
                )));
            }
            highest_cost = highest_cost.max(cost);
            if hashes.insert(user.to_owned(), hash.to_owned()).is_some() {
                return Err(UsersFileError::Repeated {
                    number,
                    user: user.to_owned(),
                });
            }
        }
        if hashes.is_empty() {
            return Err(UsersFileError::NoUser);
        }
        // `.` is 0 in bcrypt's base64 alphabet: a zero salt and hash decode cleanly, and no
        // password hashes to 23 zero bytes in practice (and a dummy match is refused anyway).
        let dummy = format!("$2b${highest_cost:02}${}", ".".repeat(53));
        Ok(Users { hashes, dummy })
    }
}

impl MetricsUsers {
    pub fn new(users: Users) -> MetricsUsers {
        MetricsUsers {
            users: RwLock::new(Arc::new(users)),
            verified: Mutex::new(HashSet::new()),
            bcrypt_turn: Arc::new(tokio::sync::Mutex::new(())),
        }
    }

    /// Puts the users of a reload in force and forgets every verified password.
    pub fn replace(&self, users: Users) {
        // Poisoning only means a panic while swapping an Arc or clearing a set; both are intact.
        *self.users.write().unwrap_or_else(|e| e.into_inner()) = Arc::new(users);
        self.verified
            .lock()
            .unwrap_or_else(|e| e.into_inner())
            .clear();
    }

    /// Whether `authorization` (the request's `Authorization` header) carries the basic-auth
    /// credentials of a listed user.
    pub async fn allows(&self, authorization: Option<&HeaderValue>) -> bool {
        let Some((user, password)) = authorization.and_then(basic_credentials) else {
            return false;
        };
        let users = self.users.read().unwrap_or_else(|e| e.into_inner()).clone();
        let (hash, known) = match users.hashes.get(&user) {
            Some(hash) => (hash.as_str(), true),
            None => (users.dummy.as_str(), false),
        };
        let key = cache_key(&user, hash, &password);
        if known && self.is_verified(&key) {
            return true;
        }
        let hash = hash.to_owned();
        let turn = self.bcrypt_turn.clone().lock_owned().await;
        // Another request may have verified the same credentials while this one waited.
        if known && self.is_verified(&key) {
            return true;
        }
        let matched = tokio::task::spawn_blocking(move || {
            let _turn = turn;
            bcrypt::verify(&password, &hash).unwrap_or(false)
        })
        .await
        .unwrap_or(false);
        if !(matched && known) {
            return false;
        }
        let mut verified = self.verified.lock().unwrap_or_else(|e| e.into_inner());
        if verified.len() >= CACHE_ENTRIES {
            // Any entry: its owner pays one bcrypt at the next scrape.
            if let Some(&evicted) = verified.iter().next() {
                verified.remove(&evicted);
            }
        }
        verified.insert(key);
        true
    }

    fn is_verified(&self, key: &[u8; 32]) -> bool {
        self.verified
            .lock()
            .unwrap_or_else(|e| e.into_inner())
            .contains(key)
    }
}

/// The user and password of `Basic base64(user:password)`; the scheme without regard to case.
fn basic_credentials(header: &HeaderValue) -> Option<(String, Vec<u8>)> {
    let (scheme, encoded) = header.to_str().ok()?.trim().split_once(' ')?;
    if !scheme.eq_ignore_ascii_case("basic") {
        return None;
    }
    let decoded = base64::engine::general_purpose::STANDARD
        .decode(encoded.trim())
        .ok()?;
    let colon = decoded.iter().position(|&b| b == b':')?;
    let user = std::str::from_utf8(&decoded[..colon]).ok()?.to_owned();
    Some((user, decoded[colon + 1..].to_vec()))
}

/// SHA-256 over the user, the stored hash and the password, each but the last length-prefixed.
fn cache_key(user: &str, hash: &str, password: &[u8]) -> [u8; 32] {
    use sha2::Digest;
    let mut digest = sha2::Sha256::new();
    for part in [user.as_bytes(), hash.as_bytes()] {
        digest.update((part.len() as u64).to_le_bytes());
        digest.update(part);
    }
    digest.update(password);
    digest.finalize().into()
}

/// Why a users file was refused. The text follows the file's path (it starts with ` line N: ` or
/// ` holds`).
#[derive(Debug, thiserror::Error)]
enum UsersFileError {
    #[error(" line {number}: {why}; expected `user:bcrypt-hash`")]
    BadLine { number: usize, why: String },
    #[error(" line {number}: the user {user:?} is listed before")]
    Repeated { number: usize, user: String },
    #[error(" holds no user (one `user:bcrypt-hash` a line; # starts a comment)")]
    NoUser,
}

#[cfg(test)]
mod tests {
    use super::*;

    fn header(user: &str, password: &str) -> HeaderValue {
        let encoded =
            base64::engine::general_purpose::STANDARD.encode(format!("{user}:{password}"));
        HeaderValue::from_str(&format!("Basic {encoded}")).unwrap()
    }

    #[test]
    fn the_file_format_is_checked_line_by_line() {
        let hash = bcrypt::hash("secret", 4).unwrap();
        let users = Users::parse(&format!(
            "# scrapers\n\nprometheus:{hash}\n  other : {hash}  \n"
        ))
        .unwrap();
        assert_eq!(users.hashes.len(), 2);
        assert!(users.hashes.contains_key("other"));
        assert_eq!(users.dummy.len(), 60);
        assert!(users.dummy.starts_with("$2b$04$"));
        // The dummy is a hash bcrypt accepts, and no password matches it.
        assert_eq!(bcrypt::verify("secret", &users.dummy).ok(), Some(false));
        // An unknown user costs as much as the most expensive listed one.
        let dearer = bcrypt::hash("secret", 5).unwrap();
        let mixed = Users::parse(&format!("a:{hash}\nb:{dearer}\nc:{hash}\n")).unwrap();
        assert!(mixed.dummy.starts_with("$2b$05$"), "{}", mixed.dummy);

        let error = |text: &str| Users::parse(text).unwrap_err().to_string();
        assert_eq!(
            error("# only a comment\n"),
            " holds no user (one `user:bcrypt-hash` a line; # starts a comment)"
        );
        assert_eq!(
            error(&format!("a:{hash}\nprometheus {hash}\n")),
            " line 2: no `:`; expected `user:bcrypt-hash`"
        );
        assert_eq!(
            error(&format!(":{hash}\n")),
            " line 1: the user name is empty; expected `user:bcrypt-hash`"
        );
        assert!(
            error("\nprometheus:secret\n").starts_with(" line 2: the hash is not a bcrypt hash ("),
            "{}",
            error("\nprometheus:secret\n")
        );
        assert!(!error("\nprometheus:secret\n").contains("secret"));
        assert_eq!(
            error(&format!("a:{hash}\na:{hash}\n")),
            " line 2: the user \"a\" is listed before"
        );
        let too_cheap = format!("$2b$03${}", &hash[7..]);
        assert_eq!(
            error(&format!("a:{too_cheap}\n")),
            " line 1: the hash has cost 3; bcrypt allows 4 to 31; expected `user:bcrypt-hash`"
        );
    }

    #[test]
    fn a_missing_file_is_named() {
        let error = Users::read(Path::new("/nonexistent/metrics-users"))
            .unwrap_err()
            .to_string();
        assert!(
            error
                .starts_with("server.metrics_users_file: cannot read /nonexistent/metrics-users: "),
            "{error}"
        );
    }

    #[tokio::test]
    async fn only_listed_users_with_their_password_pass_and_successes_are_cached() {
        let hash = bcrypt::hash("right password", 4).unwrap();
        let users = MetricsUsers::new(Users::parse(&format!("prom:{hash}\n")).unwrap());
        assert!(!users.allows(None).await);
        assert!(!users.allows(Some(&header("prom", "wrong"))).await);
        assert!(
            !users
                .allows(Some(&header("nobody", "right password")))
                .await
        );
        assert!(
            !users
                .allows(Some(&HeaderValue::from_static("Bearer cHJvbTpyaWdodA==")))
                .await
        );
        assert!(
            !users
                .allows(Some(&HeaderValue::from_static("Basic !!not base64!!")))
                .await
        );
        assert!(
            users.verified.lock().unwrap().is_empty(),
            "failures are not cached"
        );
        assert!(users.allows(Some(&header("prom", "right password"))).await);
        assert_eq!(users.verified.lock().unwrap().len(), 1);
        // The scheme is matched without regard to case; the cached pair answers.
        let encoded = base64::engine::general_purpose::STANDARD.encode("prom:right password");
        let lower = HeaderValue::from_str(&format!("basic {encoded}")).unwrap();
        assert!(users.allows(Some(&lower)).await);
        assert_eq!(users.verified.lock().unwrap().len(), 1);

        // A reload with a new hash forgets the old password.
        let rotated = bcrypt::hash("new password", 4).unwrap();
        users.replace(Users::parse(&format!("prom:{rotated}\n")).unwrap());
        assert!(users.verified.lock().unwrap().is_empty());
        assert!(!users.allows(Some(&header("prom", "right password"))).await);
        assert!(users.allows(Some(&header("prom", "new password"))).await);
    }

    #[tokio::test]
    async fn the_cache_is_bounded() {
        let lines: String = (0..CACHE_ENTRIES + 8)
            .map(|n| format!("user-{n}:{}\n", bcrypt::hash(format!("pw-{n}"), 4).unwrap()))
            .collect();
        let users = MetricsUsers::new(Users::parse(&lines).unwrap());
        for n in 0..CACHE_ENTRIES + 8 {
            assert!(
                users
                    .allows(Some(&header(&format!("user-{n}"), &format!("pw-{n}"))))
                    .await
            );
        }
        assert_eq!(users.verified.lock().unwrap().len(), CACHE_ENTRIES);
    }
}
