//! Optional HTTP basic auth for `/metrics`, like the `basic_auth_users` of Prometheus'
//! exporter-toolkit web configuration: `server.metrics_users_file` lists `user:bcrypt-hash` lines.
//!
//! bcrypt is slow on purpose (tens of milliseconds at cost 10), and Prometheus scrapes every 15 s
//! with the same credentials, so the outcome of a check is remembered under a keyed digest: HMAC-
//! SHA-256, under a key drawn at random when the daemon starts, over the user, the stored hash and
//! the password. The password itself is never kept, a changed hash misses, and a memory dump does
//! not let anyone test guesses faster than bcrypt. Successes ([`VERIFIED_ENTRIES`]) and failures
//! ([`REFUSED_ENTRIES`]) are kept apart, so that nobody without a password can evict the scraper's
//! entry, and a reload keeps both (an entry only matches the hash it was made with).
//!
//! Timing does not tell whether a user exists: an unknown user's password is verified against a
//! dummy hash of the highest cost in the file, so every uncached refusal costs one bcrypt. bcrypt
//! runs off the async workers, one at a time (the turn is held until the computation ends, even
//! when the client has gone), so a flood of wrong passwords takes at most one core.
//!
//! Wrong passwords cannot hold up a listed scraper (issue 24): a peer (an IPv4 address, or the
//! /64 of an IPv6 one) may have one check waiting or running, and another request of that peer is
//! answered at once ([`Verdict::PeerBusy`], 429); at most `server.metrics_auth_queue` checks wait
//! in all ([`Verdict::QueueFull`], 503). Checks are served in arrival order, so a scraper's first
//! check waits for at most one check per other peer, never behind a peer's whole flood.

use std::collections::{HashMap, HashSet};
use std::hash::{BuildHasher, RandomState};
use std::net::IpAddr;
use std::path::Path;
use std::sync::{Arc, Mutex, RwLock};

use base64::Engine as _;
use hyper::header::HeaderValue;

/// At most this many verified credentials are remembered; a scrape setup has a handful.
pub const VERIFIED_ENTRIES: usize = 64;

/// At most this many refused credentials are remembered (32 bytes each); when full, they are all
/// forgotten (which costs only those who retry a wrong password).
pub const REFUSED_ENTRIES: usize = 4096;

/// bcrypt reads only the first 72 bytes of a password: a longer one is refused without a check,
/// so that no two passwords that differ after byte 72 both pass.
pub const MAX_PASSWORD_BYTES: usize = 72;

/// The realm of the `WWW-Authenticate` challenge.
pub const CHALLENGE: &str = "Basic realm=\"backlogd\"";

/// The users allowed to scrape `/metrics`, shared by the server and the reload task.
pub struct MetricsUsers {
    users: RwLock<Arc<Users>>,
    /// The HMAC key of the digests below, random per process.
    key: [u8; 32],
    /// Digests of verified (user, hash, password) triples.
    verified: Mutex<HashSet<[u8; 32]>>,
    /// Digests of refused (user, hash, password) triples.
    refused: Mutex<HashSet<[u8; 32]>>,
    /// The peers with a check waiting or running, and how many checks wait or run in all.
    waiting: Arc<Mutex<Waiting>>,
    /// `server.metrics_auth_queue`: checks waiting or running at most.
    queue: usize,
    /// One bcrypt computation at a time.
    bcrypt_turn: Arc<tokio::sync::Mutex<()>>,
    /// Counts every bcrypt computation (`backlogd_metrics_auth_checks_total`).
    checks: prometheus::IntCounter,
}

/// What `MetricsUsers::check` decided about a request.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub enum Verdict {
    /// The credentials of a listed user.
    Allowed,
    /// No credentials, unusable ones, or wrong ones: 401.
    Refused,
    /// The peer already has a check waiting or running: 429, try again shortly.
    PeerBusy,
    /// `server.metrics_auth_queue` checks are waiting or running: 503, try again shortly.
    QueueFull,
}

impl Verdict {
    /// The `cause` label of `backlogd_metrics_auth_refused_total` for a request turned away
    /// without a check.
    pub fn cause(self) -> Option<&'static str> {
        match self {
            Verdict::PeerBusy => Some("peer_busy"),
            Verdict::QueueFull => Some("queue_full"),
            Verdict::Allowed | Verdict::Refused => None,
        }
    }
}

#[derive(Default)]
struct Waiting {
    peers: HashSet<IpAddr>,
    total: usize,
}

/// A place among the waiting checks: given back when dropped (after the bcrypt, if one ran).
struct Place {
    waiting: Arc<Mutex<Waiting>>,
    peer: IpAddr,
}

impl Drop for Place {
    fn drop(&mut self) {
        let mut waiting = self.waiting.lock().unwrap_or_else(|e| e.into_inner());
        waiting.peers.remove(&self.peer);
        waiting.total = waiting.total.saturating_sub(1);
    }
}

/// The peer a request's check is counted against: an IPv4 address (a v4-mapped IPv6 one as
/// IPv4), or the /64 of an IPv6 address (one host usually has a whole /64).
pub fn peer_key(ip: IpAddr) -> IpAddr {
    match ip {
        IpAddr::V4(_) => ip,
        IpAddr::V6(v6) => match v6.to_ipv4_mapped() {
            Some(v4) => IpAddr::V4(v4),
            None => {
                let mut segments = v6.segments();
                segments[4..].fill(0);
                IpAddr::V6(segments.into())
            }
        },
    }
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
    pub fn read(path: &Path) -> Result<Users, UsersError> {
        let text = std::fs::read_to_string(path).map_err(|error| UsersError::Unreadable {
            path: path.to_owned(),
            error,
        })?;
        Users::parse(&text).map_err(|problem| UsersError::Invalid {
            path: path.to_owned(),
            problem,
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
    /// `queue` is `server.metrics_auth_queue`; `checks` counts the bcrypt computations.
    pub fn new(users: Users, queue: usize, checks: prometheus::IntCounter) -> MetricsUsers {
        MetricsUsers {
            users: RwLock::new(Arc::new(users)),
            key: random_key(),
            verified: Mutex::new(HashSet::new()),
            refused: Mutex::new(HashSet::new()),
            waiting: Arc::new(Mutex::new(Waiting::default())),
            queue: queue.max(1),
            bcrypt_turn: Arc::new(tokio::sync::Mutex::new(())),
            checks,
        }
    }

    /// Puts the users of a reload in force. Remembered outcomes stay: each matches only the hash
    /// it was made with, so a rotated password misses, and a removed user is not looked up.
    pub fn replace(&self, users: Users) {
        // Poisoning only means a panic while swapping an Arc; it is intact.
        *self.users.write().unwrap_or_else(|e| e.into_inner()) = Arc::new(users);
    }

    /// Whether `authorization` (the request's `Authorization` header) carries the basic-auth
    /// credentials of a listed user, for a request from `peer`.
    pub async fn check(&self, peer: IpAddr, authorization: Option<&HeaderValue>) -> Verdict {
        let Some((user, password)) = authorization.and_then(basic_credentials) else {
            return Verdict::Refused;
        };
        if password.len() > MAX_PASSWORD_BYTES {
            return Verdict::Refused;
        }
        let users = self.users.read().unwrap_or_else(|e| e.into_inner()).clone();
        let (hash, known) = match users.hashes.get(&user) {
            Some(hash) => (hash.as_str(), true),
            None => (users.dummy.as_str(), false),
        };
        let key = self.digest(&user, hash, &password);
        if let Some(verdict) = self.remembered(&key, known) {
            return verdict;
        }
        let place = {
            let peer = peer_key(peer);
            let mut waiting = self.waiting.lock().unwrap_or_else(|e| e.into_inner());
            if waiting.peers.contains(&peer) {
                return Verdict::PeerBusy;
            }
            if waiting.total >= self.queue {
                return Verdict::QueueFull;
            }
            waiting.peers.insert(peer);
            waiting.total += 1;
            Place {
                waiting: self.waiting.clone(),
                peer,
            }
        };
        let hash = hash.to_owned();
        let turn = self.bcrypt_turn.clone().lock_owned().await;
        // Another request may have checked the same credentials while this one waited.
        if let Some(verdict) = self.remembered(&key, known) {
            return verdict;
        }
        let checks = self.checks.clone();
        let matched = tokio::task::spawn_blocking(move || {
            let (_turn, _place) = (turn, place);
            checks.inc();
            bcrypt::verify(&password, &hash).unwrap_or(false)
        })
        .await
        .unwrap_or(false);
        if matched && known {
            remember(&self.verified, key, VERIFIED_ENTRIES, Forget::One);
            Verdict::Allowed
        } else {
            remember(&self.refused, key, REFUSED_ENTRIES, Forget::All);
            Verdict::Refused
        }
    }

    /// The remembered outcome for the digest `key`, if any.
    fn remembered(&self, key: &[u8; 32], known: bool) -> Option<Verdict> {
        let holds = |set: &Mutex<HashSet<[u8; 32]>>| {
            set.lock().unwrap_or_else(|e| e.into_inner()).contains(key)
        };
        if known && holds(&self.verified) {
            Some(Verdict::Allowed)
        } else if holds(&self.refused) {
            Some(Verdict::Refused)
        } else {
            None
        }
    }

    /// HMAC-SHA-256 under this process' key over the user, the stored hash and the password, each
    /// but the last length-prefixed.
    fn digest(&self, user: &str, hash: &str, password: &[u8]) -> [u8; 32] {
        use hmac::{KeyInit, Mac};
        // HMAC accepts keys of any length, so `new_from_slice` cannot fail.
        let mut mac = hmac::Hmac::<sha2::Sha256>::new_from_slice(&self.key)
            .expect("HMAC takes keys of any length");
        for part in [user.as_bytes(), hash.as_bytes()] {
            mac.update(&(part.len() as u64).to_le_bytes());
            mac.update(part);
        }
        mac.update(password);
        mac.finalize().into_bytes().into()
    }
}

/// What a full set of remembered outcomes gives up for a new one.
enum Forget {
    /// Any one entry (its owner pays one bcrypt at the next scrape).
    One,
    /// Every entry.
    All,
}

fn remember(set: &Mutex<HashSet<[u8; 32]>>, key: [u8; 32], bound: usize, forget: Forget) {
    let mut set = set.lock().unwrap_or_else(|e| e.into_inner());
    if set.len() >= bound {
        match forget {
            Forget::One => {
                if let Some(&evicted) = set.iter().next() {
                    set.remove(&evicted);
                }
            }
            Forget::All => set.clear(),
        }
    }
    set.insert(key);
}

/// 256 random bits: four independently keyed SipHash outputs (the standard library seeds
/// `RandomState` from the operating system).
fn random_key() -> [u8; 32] {
    let mut key = [0u8; 32];
    for (n, chunk) in key.chunks_exact_mut(8).enumerate() {
        chunk.copy_from_slice(&RandomState::new().hash_one(n).to_le_bytes());
    }
    key
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

/// Why `server.metrics_users_file` cannot be used; the text names the setting and the file.
#[derive(Debug, thiserror::Error)]
pub enum UsersError {
    #[error("server.metrics_users_file: cannot read {}: {error}", path.display())]
    Unreadable {
        path: std::path::PathBuf,
        error: std::io::Error,
    },
    #[error("server.metrics_users_file: {}{problem}", path.display())]
    Invalid {
        path: std::path::PathBuf,
        problem: UsersFileError,
    },
}

/// Why a users file was refused. The text follows the file's path (it starts with ` line N: ` or
/// ` holds`).
#[derive(Debug, thiserror::Error)]
pub enum UsersFileError {
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

    const PEER: IpAddr = IpAddr::V4(std::net::Ipv4Addr::LOCALHOST);

    fn users_of(text: &str, queue: usize) -> MetricsUsers {
        let checks = prometheus::IntCounter::new("checks", "bcrypt runs").unwrap();
        MetricsUsers::new(Users::parse(text).unwrap(), queue, checks)
    }

    impl MetricsUsers {
        async fn allows(&self, authorization: Option<&HeaderValue>) -> bool {
            self.check(PEER, authorization).await == Verdict::Allowed
        }
    }

    #[tokio::test]
    async fn only_listed_users_with_their_password_pass_and_outcomes_are_cached() {
        let hash = bcrypt::hash("right password", 4).unwrap();
        let users = users_of(&format!("prom:{hash}\n"), 8);
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
        assert!(users.verified.lock().unwrap().is_empty());
        assert_eq!(
            users.refused.lock().unwrap().len(),
            2,
            "two checked failures"
        );
        assert_eq!(users.checks.get(), 2);
        // A failure repeated is answered from memory.
        assert!(!users.allows(Some(&header("prom", "wrong"))).await);
        assert_eq!(users.checks.get(), 2);
        assert!(users.allows(Some(&header("prom", "right password"))).await);
        assert_eq!(users.verified.lock().unwrap().len(), 1);
        assert_eq!(users.checks.get(), 3);
        // The scheme is matched without regard to case; the cached pair answers.
        let encoded = base64::engine::general_purpose::STANDARD.encode("prom:right password");
        let lower = HeaderValue::from_str(&format!("basic {encoded}")).unwrap();
        assert!(users.allows(Some(&lower)).await);
        assert_eq!(users.verified.lock().unwrap().len(), 1);
        assert_eq!(users.checks.get(), 3);

        // A reload with the same hash keeps the remembered password; a new hash misses it.
        users.replace(Users::parse(&format!("prom:{hash}\n")).unwrap());
        assert!(users.allows(Some(&header("prom", "right password"))).await);
        assert_eq!(users.checks.get(), 3);
        let rotated = bcrypt::hash("new password", 4).unwrap();
        users.replace(Users::parse(&format!("prom:{rotated}\n")).unwrap());
        assert!(!users.allows(Some(&header("prom", "right password"))).await);
        assert!(users.allows(Some(&header("prom", "new password"))).await);
        // A removed user is refused although a password of theirs is remembered.
        users.replace(Users::parse(&format!("other:{rotated}\n")).unwrap());
        assert!(!users.allows(Some(&header("prom", "new password"))).await);
    }

    #[tokio::test]
    async fn the_caches_are_bounded() {
        let lines: String = (0..VERIFIED_ENTRIES + 8)
            .map(|n| format!("user-{n}:{}\n", bcrypt::hash(format!("pw-{n}"), 4).unwrap()))
            .collect();
        let users = users_of(&lines, 8);
        for n in 0..VERIFIED_ENTRIES + 8 {
            assert!(
                users
                    .allows(Some(&header(&format!("user-{n}"), &format!("pw-{n}"))))
                    .await
            );
        }
        assert_eq!(users.verified.lock().unwrap().len(), VERIFIED_ENTRIES);
        for n in 0..REFUSED_ENTRIES + 3 {
            let mut key = [0u8; 32];
            key[..8].copy_from_slice(&(n as u64).to_le_bytes());
            remember(&users.refused, key, REFUSED_ENTRIES, Forget::All);
        }
        assert_eq!(users.refused.lock().unwrap().len(), 3);
    }

    /// A password bcrypt would cut at 72 bytes is refused, whatever its first 72 bytes.
    #[tokio::test]
    async fn a_password_over_72_bytes_is_refused_without_a_check() {
        let password = "p".repeat(MAX_PASSWORD_BYTES);
        let hash = bcrypt::hash(&password, 4).unwrap();
        let users = users_of(&format!("prom:{hash}\n"), 8);
        let longer = format!("{password}and more");
        assert_eq!(
            bcrypt::verify(&longer, &hash).ok(),
            Some(true),
            "bcrypt cuts"
        );
        assert!(!users.allows(Some(&header("prom", &longer))).await);
        assert_eq!(users.checks.get(), 0);
        assert!(users.allows(Some(&header("prom", &password))).await);
    }

    /// One check waits or runs per peer, and at most `queue` in all; the rest are turned away at
    /// once, and the places are given back.
    #[tokio::test]
    async fn a_peer_has_one_check_at_a_time_and_the_queue_is_bounded() {
        let hash = bcrypt::hash("right", 4).unwrap();
        let users = Arc::new(users_of(&format!("prom:{hash}\n"), 2));
        // Hold the bcrypt turn, so that checks stay waiting.
        let turn = users.bcrypt_turn.clone().lock_owned().await;
        let waiting = |peer: IpAddr, password: &'static str| {
            let users = users.clone();
            tokio::spawn(async move { users.check(peer, Some(&header("prom", password))).await })
        };
        let a: IpAddr = "10.0.0.1".parse().unwrap();
        let b: IpAddr = "2001:db8::1".parse().unwrap();
        let first = waiting(a, "wrong-1");
        let second = waiting(b, "right");
        while users.waiting.lock().unwrap().total < 2 {
            tokio::task::yield_now().await;
        }
        assert_eq!(
            users.check(a, Some(&header("prom", "wrong-2"))).await,
            Verdict::PeerBusy
        );
        // Another address of the same IPv6 /64 is the same peer; a v4-mapped address is its IPv4.
        let same_64: IpAddr = "2001:db8::ffff:2".parse().unwrap();
        assert_eq!(
            users.check(same_64, Some(&header("prom", "x"))).await,
            Verdict::PeerBusy
        );
        let mapped: IpAddr = "::ffff:10.0.0.1".parse().unwrap();
        assert_eq!(
            users.check(mapped, Some(&header("prom", "x"))).await,
            Verdict::PeerBusy
        );
        let c: IpAddr = "10.0.0.3".parse().unwrap();
        assert_eq!(
            users.check(c, Some(&header("prom", "x"))).await,
            Verdict::QueueFull
        );
        drop(turn);
        assert_eq!(first.await.unwrap(), Verdict::Refused);
        assert_eq!(second.await.unwrap(), Verdict::Allowed);
        assert_eq!(users.waiting.lock().unwrap().total, 0);
        assert!(users.waiting.lock().unwrap().peers.is_empty());
        assert_eq!(
            users.check(c, Some(&header("prom", "right"))).await,
            Verdict::Allowed
        );
    }
}
