//! A minimal Chrome DevTools Protocol client: starts headless Chromium, loads one page, and tells
//! what a person opening it would notice going wrong: console errors, uncaught exceptions, resources
//! that failed to load or were refused by the page's Content-Security-Policy, and charts drawn
//! without a line. It also takes a full-page screenshot.
//!
//! Synchronous, over `tungstenite`; one browser per [`inspect`], one at a time. Every wait is
//! bounded: each loop by a deadline ([`STEP`]) and by a count of iterations.

use std::fs::File;
use std::io::ErrorKind;
use std::net::{SocketAddr, TcpStream};
use std::os::unix::process::CommandExt;
use std::path::{Path, PathBuf};
use std::process::{Child, Command, Stdio};
use std::sync::Mutex;
use std::time::{Duration, Instant};

use base64::Engine;
use serde_json::{Value, json};
use tungstenite::{Message, WebSocket};

/// The longest any one step may take (starting the browser, loading the page, one command).
pub const STEP: Duration = Duration::from_secs(30);

/// How often a wait looks again: the socket's read timeout, and the poll of the browser's port file.
const POLL: Duration = Duration::from_millis(100);

/// More than any step reads or polls; a loop that reaches it is broken, whatever the clock says.
const MAX_ITERATIONS: usize = 100_000;

/// After the load event, how long messages are still collected: a failed load or an error logged
/// from the load handler may be reported just after it.
const SETTLE: Duration = Duration::from_millis(500);

/// What the page showed.
#[derive(Debug, Clone)]
pub struct PageReport {
    /// `console.error` and `console.assert` calls, uncaught exceptions, and log entries of level
    /// error (resources that failed to load, CSP violations), one sentence each.
    pub console_errors: Vec<String>,
    /// One per `<svg>` of the page, in document order.
    pub charts: Vec<ChartInfo>,
    /// The size of the screenshot written.
    pub png_bytes: usize,
    /// The page printed to PDF (`Page.printToPDF`, A4-like defaults): its pages, counted by their
    /// page objects; 0 when what came back was not a PDF.
    pub pdf_pages: usize,
}

/// One `<svg>`: its lines.
#[derive(Debug, Clone)]
pub struct ChartInfo {
    pub series: Vec<SeriesInfo>,
}

/// One `<polyline>` as the browser parsed and laid it out.
#[derive(Debug, Clone)]
pub struct SeriesInfo {
    /// Its `data-series` attribute.
    pub name: String,
    /// The points the browser parsed from `points`.
    pub points: usize,
    /// `getBBox()`: the geometry in the chart's own units.
    pub bbox_width: f64,
    pub bbox_height: f64,
    /// `getBoundingClientRect()` width: the box as laid out on the page (zero when hidden).
    pub rendered_width: f64,
}

impl PageReport {
    /// What is wrong with the page; empty when a reader would see every chart and no error.
    pub fn problems(&self) -> Vec<String> {
        let mut out: Vec<String> = self
            .console_errors
            .iter()
            .map(|e| format!("console error: {e}"))
            .collect();
        for (i, chart) in self.charts.iter().enumerate() {
            if chart.series.is_empty() {
                out.push(format!("empty chart: svg #{i} has no polyline"));
            }
            for s in &chart.series {
                if s.points < 2 {
                    out.push(format!(
                        "empty chart: svg #{i} series {:?} has {} point(s)",
                        s.name, s.points
                    ));
                } else if s.bbox_width <= 0.0 || s.rendered_width <= 0.0 {
                    out.push(format!(
                        "empty chart: svg #{i} series {:?} is drawn with zero width (bbox {}, rendered {})",
                        s.name, s.bbox_width, s.rendered_width
                    ));
                }
            }
        }
        if self.png_bytes == 0 {
            out.push("the screenshot is empty".to_owned());
        }
        out
    }
}

/// Loads `url` in headless Chromium, waits for its load event, and reports what went wrong; writes
/// a full-page PNG screenshot to `screenshot`. An `Err` says the browser could not be driven (not
/// installed, did not start, did not load the page in time): the page was not judged.
pub fn inspect(url: &str, screenshot: &Path) -> Result<PageReport, String> {
    // One browser at a time: each takes a core or more while it starts, and tests run in
    // parallel threads.
    static ONE_AT_A_TIME: Mutex<()> = Mutex::new(());
    let _turn = ONE_AT_A_TIME
        .lock()
        .unwrap_or_else(std::sync::PoisonError::into_inner);
    let browser = Browser::start()?;
    let result = browser.inspect(url, screenshot);
    // On failure, the browser's own words (it writes to stderr why it could not start or load).
    result.map_err(|e| {
        format!(
            "{e}\n--- chromium's output (last lines) ---\n{}",
            browser.log_tail()
        )
    })
}

/// The `chromium` on `PATH`.
fn chromium() -> Result<PathBuf, String> {
    let path = std::env::var_os("PATH").unwrap_or_default();
    std::env::split_paths(&path)
        .map(|dir| dir.join("chromium"))
        .find(|candidate| candidate.is_file())
        .ok_or_else(|| {
            "chromium is not installed (no `chromium` on PATH): ./scripts/test installs it \
             (Debian package chromium), or run `apt-get install chromium`"
                .to_owned()
        })
}

/// A headless Chromium of our own, killed (with every process it started) on drop.
struct Browser {
    child: Child,
    port: u16,
    /// `/devtools/browser/<id>`, the browser-wide socket.
    browser_path: String,
    log: PathBuf,
    // Dropped after `drop` has killed the browser, so the profile is no longer in use.
    _profile: tempfile::TempDir,
}

impl Browser {
    fn start() -> Result<Browser, String> {
        let binary = chromium()?;
        let profile = tempfile::tempdir().map_err(|e| format!("a temporary profile: {e}"))?;
        let log = profile.path().join("chromium.log");
        let out = File::create(&log).map_err(|e| format!("{}: {e}", log.display()))?;
        let err = out
            .try_clone()
            .map_err(|e| format!("{}: {e}", log.display()))?;
        let child = Command::new(&binary)
            .args([
                "--headless=new",
                "--no-sandbox",
                "--disable-gpu",
                "--remote-debugging-port=0",
                "--no-first-run",
                "--no-default-browser-check",
                "--disable-extensions",
                "--disable-background-networking",
                "--disable-component-update",
                "--disable-sync",
                "--hide-scrollbars",
                "--mute-audio",
                "--window-size=1024,768",
            ])
            .arg(format!("--user-data-dir={}", profile.path().display()))
            .arg("about:blank")
            .stdin(Stdio::null())
            .stdout(out)
            .stderr(err)
            // Its own process group, so that drop ends the renderers and helpers it starts too.
            .process_group(0)
            .spawn()
            .map_err(|e| format!("starting {}: {e}", binary.display()))?;
        let mut browser = Browser {
            child,
            port: 0,
            browser_path: String::new(),
            log,
            _profile: profile,
        };
        // DevToolsActivePort: the port on the first line, the browser socket's path on the second.
        let port_file = browser._profile.path().join("DevToolsActivePort");
        let deadline = Instant::now() + STEP;
        for _ in 0..MAX_ITERATIONS {
            if let Ok(text) = std::fs::read_to_string(&port_file)
                && let Some((port, path)) = text.split_once('\n')
                && let Ok(port) = port.trim().parse::<u16>()
                && path.trim().starts_with("/devtools/browser/")
            {
                browser.port = port;
                browser.browser_path = path.trim().to_owned();
                return Ok(browser);
            }
            if let Ok(Some(status)) = browser.child.try_wait() {
                return Err(format!(
                    "chromium exited before it listened ({status})\n{}",
                    browser.log_tail()
                ));
            }
            if Instant::now() >= deadline {
                break;
            }
            std::thread::sleep(POLL);
        }
        Err(format!(
            "chromium did not write {} within {STEP:?}\n{}",
            port_file.display(),
            browser.log_tail()
        ))
    }

    fn log_tail(&self) -> String {
        let text = std::fs::read_to_string(&self.log).unwrap_or_default();
        let lines: Vec<&str> = text.lines().collect();
        lines[lines.len().saturating_sub(20)..].join("\n")
    }

    fn inspect(&self, url: &str, screenshot: &Path) -> Result<PageReport, String> {
        let mut cdp = Cdp::connect(self.port, &self.browser_path)?;
        // A fresh tab, driven over the browser's socket through a flattened session.
        let target = cdp.call(None, "Target.createTarget", json!({"url": "about:blank"}))?;
        let target_id = target["targetId"]
            .as_str()
            .ok_or("Target.createTarget gave no targetId")?
            .to_owned();
        let attached = cdp.call(
            None,
            "Target.attachToTarget",
            json!({"targetId": target_id, "flatten": true}),
        )?;
        let session = attached["sessionId"]
            .as_str()
            .ok_or("Target.attachToTarget gave no sessionId")?
            .to_owned();
        cdp.session = Some(session.clone());
        let s = Some(session.as_str());
        for domain in ["Runtime.enable", "Log.enable", "Page.enable"] {
            cdp.call(s, domain, json!({}))?;
        }
        // Only messages from here on are the page's.
        cdp.errors.clear();
        cdp.loaded = false;
        let navigated = cdp.call(s, "Page.navigate", json!({"url": url}))?;
        if let Some(error) = navigated["errorText"].as_str() {
            return Err(format!("Page.navigate {url}: {error}"));
        }
        cdp.wait_for_load()?;
        // The load event must have been this page's, not a late one of the blank tab: the
        // document says which it is.
        let deadline = Instant::now() + STEP;
        for _ in 0..MAX_ITERATIONS {
            let state = cdp.call(
                s,
                "Runtime.evaluate",
                json!({"expression": "[document.readyState, location.href]", "returnByValue": true}),
            )?;
            let state = &state["result"]["value"];
            if state[0] == "complete" && state[1] != "about:blank" {
                break;
            }
            if Instant::now() >= deadline {
                return Err(format!("{url} was not loaded within {STEP:?}: {state}"));
            }
            cdp.drain(POLL)?;
        }
        cdp.drain(SETTLE)?;

        // Evaluation from the protocol is not subject to the page's Content-Security-Policy (it
        // is not the page's script), so no Page.setBypassCSP is needed.
        let evaluated = cdp.call(
            s,
            "Runtime.evaluate",
            json!({"expression": CHARTS_JS, "returnByValue": true}),
        )?;
        if let Some(exception) = evaluated.get("exceptionDetails") {
            return Err(format!("the chart inspection threw: {exception}"));
        }
        let charts = charts_of(&evaluated["result"]["value"])?;

        let metrics = cdp.call(s, "Page.getLayoutMetrics", json!({}))?;
        let size = if metrics["cssContentSize"].is_object() {
            &metrics["cssContentSize"]
        } else {
            &metrics["contentSize"]
        };
        let (width, height) = (
            size["width"].as_f64().unwrap_or(0.0),
            size["height"].as_f64().unwrap_or(0.0),
        );
        let shot = cdp.call(
            s,
            "Page.captureScreenshot",
            json!({
                "format": "png",
                "captureBeyondViewport": true,
                "clip": {"x": 0, "y": 0, "width": width, "height": height, "scale": 1},
            }),
        )?;
        let png = base64::engine::general_purpose::STANDARD
            .decode(
                shot["data"]
                    .as_str()
                    .ok_or("Page.captureScreenshot gave no data")?,
            )
            .map_err(|e| format!("the screenshot is not base64: {e}"))?;
        std::fs::write(screenshot, &png).map_err(|e| format!("{}: {e}", screenshot.display()))?;
        let printed = cdp.call(s, "Page.printToPDF", json!({"printBackground": true}))?;
        let pdf = base64::engine::general_purpose::STANDARD
            .decode(
                printed["data"]
                    .as_str()
                    .ok_or("Page.printToPDF gave no data")?,
            )
            .map_err(|e| format!("the PDF is not base64: {e}"))?;
        let pdf_pages = if pdf.starts_with(b"%PDF-") {
            // "/Type /Page" but not "/Type /Pages" (the page tree).
            pdf.windows(12)
                .filter(|w| w.starts_with(b"/Type /Page") && w[11] != b's')
                .count()
        } else {
            0
        };
        // Anything logged while the page was inspected counts too.
        cdp.drain(Duration::ZERO)?;
        Ok(PageReport {
            console_errors: cdp.errors,
            charts,
            png_bytes: png.len(),
            pdf_pages,
        })
    }
}

impl Drop for Browser {
    fn drop(&mut self) {
        // SAFETY: kill(2) with the negated id of the process group our child leads; no memory is
        // involved. Only processes this browser started are in the group.
        if let Ok(pid) = i32::try_from(self.child.id()) {
            unsafe {
                libc::kill(-pid, libc::SIGKILL);
            }
        }
        let _ = self.child.kill();
        let _ = self.child.wait();
    }
}

/// For each `<svg>` of the page, its polylines as the browser parsed and laid them out.
const CHARTS_JS: &str = r#"
Array.from(document.querySelectorAll('svg')).map(svg =>
  Array.from(svg.querySelectorAll('polyline')).map(line => {
    const box = line.getBBox();
    return {
      name: line.getAttribute('data-series') || '',
      points: line.points.numberOfItems,
      bbox_width: box.width,
      bbox_height: box.height,
      rendered_width: line.getBoundingClientRect().width,
    };
  }))
"#;

fn charts_of(value: &Value) -> Result<Vec<ChartInfo>, String> {
    let charts = value
        .as_array()
        .ok_or_else(|| format!("the chart inspection returned {value}"))?;
    Ok(charts
        .iter()
        .map(|lines| ChartInfo {
            series: lines
                .as_array()
                .map_or(&[][..], Vec::as_slice)
                .iter()
                .map(|l| SeriesInfo {
                    name: l["name"].as_str().unwrap_or("").to_owned(),
                    points: l["points"].as_u64().unwrap_or(0) as usize,
                    bbox_width: l["bbox_width"].as_f64().unwrap_or(0.0),
                    bbox_height: l["bbox_height"].as_f64().unwrap_or(0.0),
                    rendered_width: l["rendered_width"].as_f64().unwrap_or(0.0),
                })
                .collect(),
        })
        .collect())
}

/// One connection to the browser's DevTools socket.
struct Cdp {
    socket: WebSocket<TcpStream>,
    next_id: u64,
    /// The page's session: events of other sessions (or of none) are not the page's.
    session: Option<String>,
    /// The page's errors seen so far.
    errors: Vec<String>,
    /// Whether `Page.loadEventFired` was seen.
    loaded: bool,
}

impl Cdp {
    fn connect(port: u16, path: &str) -> Result<Cdp, String> {
        let address = SocketAddr::from(([127, 0, 0, 1], port));
        let stream = TcpStream::connect_timeout(&address, STEP)
            .map_err(|e| format!("connecting to chromium at {address}: {e}"))?;
        let _ = stream.set_nodelay(true);
        // Long enough for the handshake's one answer; short for reading afterwards (below).
        stream
            .set_read_timeout(Some(STEP))
            .and_then(|()| stream.set_write_timeout(Some(STEP)))
            .map_err(|e| format!("socket timeouts: {e}"))?;
        let (socket, _) = tungstenite::client(format!("ws://{address}{path}"), stream)
            .map_err(|e| format!("the DevTools WebSocket handshake: {e}"))?;
        // Reads return every POLL, so that every wait can look at its deadline.
        socket
            .get_ref()
            .set_read_timeout(Some(POLL))
            .map_err(|e| format!("socket timeout: {e}"))?;
        Ok(Cdp {
            socket,
            next_id: 1,
            session: None,
            errors: Vec::new(),
            loaded: false,
        })
    }

    /// Sends a command and waits for its answer, collecting the events that come before it.
    fn call(
        &mut self,
        session: Option<&str>,
        method: &str,
        params: Value,
    ) -> Result<Value, String> {
        let id = self.next_id;
        self.next_id += 1;
        let mut message = json!({"id": id, "method": method, "params": params});
        if let Some(session) = session {
            message["sessionId"] = json!(session);
        }
        self.socket
            .send(Message::text(message.to_string()))
            .map_err(|e| format!("sending {method}: {e}"))?;
        let deadline = Instant::now() + STEP;
        for _ in 0..MAX_ITERATIONS {
            if let Some(reply) = self.next_message()? {
                if reply["id"].as_u64() == Some(id) {
                    if let Some(error) = reply.get("error") {
                        return Err(format!("{method}: {error}"));
                    }
                    return Ok(reply["result"].clone());
                }
                self.note(&reply);
            }
            if Instant::now() >= deadline {
                break;
            }
        }
        Err(format!("no answer to {method} within {STEP:?}"))
    }

    /// Reads until `Page.loadEventFired`.
    fn wait_for_load(&mut self) -> Result<(), String> {
        let deadline = Instant::now() + STEP;
        for _ in 0..MAX_ITERATIONS {
            if self.loaded {
                return Ok(());
            }
            if let Some(message) = self.next_message()? {
                self.note(&message);
            }
            if Instant::now() >= deadline {
                break;
            }
        }
        Err(format!(
            "the page did not fire its load event within {STEP:?}"
        ))
    }

    /// Reads whatever arrives within `period` (and what is already there).
    fn drain(&mut self, period: Duration) -> Result<(), String> {
        let deadline = Instant::now() + period;
        for _ in 0..MAX_ITERATIONS {
            match self.next_message()? {
                Some(message) => self.note(&message),
                None if Instant::now() >= deadline => return Ok(()),
                None => {}
            }
        }
        Ok(())
    }

    /// The next message, or `None` when none came within one POLL.
    fn next_message(&mut self) -> Result<Option<Value>, String> {
        match self.socket.read() {
            Ok(Message::Text(text)) => serde_json::from_str(text.as_str())
                .map(Some)
                .map_err(|e| format!("a DevTools message that is not JSON: {e}: {text}")),
            Ok(_) => Ok(None),
            Err(tungstenite::Error::Io(e))
                if matches!(e.kind(), ErrorKind::WouldBlock | ErrorKind::TimedOut) =>
            {
                Ok(None)
            }
            Err(e) => Err(format!("reading from chromium: {e}")),
        }
    }

    /// Keeps what an event of the page says about errors and loading.
    fn note(&mut self, message: &Value) {
        if message["sessionId"].as_str() != self.session.as_deref() {
            return;
        }
        let params = &message["params"];
        match message["method"].as_str().unwrap_or("") {
            "Page.loadEventFired" => self.loaded = true,
            "Runtime.consoleAPICalled" => {
                let kind = params["type"].as_str().unwrap_or("");
                if kind == "error" || kind == "assert" {
                    let words: Vec<String> = params["args"]
                        .as_array()
                        .map_or(&[][..], Vec::as_slice)
                        .iter()
                        .map(|a| match &a["value"] {
                            Value::String(s) => s.clone(),
                            Value::Null => a["description"].as_str().unwrap_or("").to_owned(),
                            other => other.to_string(),
                        })
                        .collect();
                    self.errors
                        .push(format!("console.{kind}: {}", words.join(" ")));
                }
            }
            "Runtime.exceptionThrown" => {
                let details = &params["exceptionDetails"];
                let text = details["exception"]["description"]
                    .as_str()
                    .or(details["text"].as_str())
                    .unwrap_or("an exception");
                self.errors.push(format!("uncaught exception: {text}"));
            }
            "Log.entryAdded" => {
                let entry = &params["entry"];
                if entry["level"].as_str() == Some("error") {
                    let mut text = format!(
                        "{} ({})",
                        entry["text"].as_str().unwrap_or(""),
                        entry["source"].as_str().unwrap_or("")
                    );
                    if let Some(url) = entry["url"].as_str() {
                        text.push_str(&format!(" at {url}"));
                    }
                    self.errors.push(text);
                }
            }
            _ => {}
        }
    }
}
