//! Headless Chromium driven over the DevTools protocol: how the report tests and the
//! benchmark open venomqa's HTML reports in a real browser, click in them, read what is
//! visible, and save a screenshot (feature `browser`).
//!
//! Chromium comes from Debian's `chromium` package (`scripts/services.sh` installs it);
//! `VENOMQA_CHROMIUM` names another binary. Each [`Browser`] is its own process with a
//! fresh profile, started with no background networking, so the only requests it makes are
//! the ones the page makes, which [`Browser::requests`] lists.

use std::io::{BufRead, BufReader};
use std::net::TcpStream;
use std::path::{Path, PathBuf};
use std::process::{Child, Command, Stdio};
use std::sync::atomic::{AtomicUsize, Ordering};
use std::time::{Duration, Instant};

use base64::Engine as _;
use serde_json::{json, Value};
use tungstenite::stream::MaybeTlsStream;
use tungstenite::{Message, WebSocket};

/// How long any one command or page load may take.
const TIMEOUT: Duration = Duration::from_secs(60);

/// What went wrong driving the browser.
#[derive(Debug, thiserror::Error)]
pub enum BrowserError {
    /// Chromium could not be started.
    #[error("starting {binary} failed: {message}; install Debian's chromium package (bash scripts/services.sh does) or set VENOMQA_CHROMIUM")]
    Start {
        /// The binary.
        binary: String,
        /// Why.
        message: String,
    },
    /// The DevTools connection failed.
    #[error("the DevTools connection to Chromium failed: {0}")]
    Socket(#[from] tungstenite::Error),
    /// A command returned an error, or the page threw.
    #[error("Chromium refused {method}: {message}")]
    Command {
        /// The command.
        method: String,
        /// Its error.
        message: String,
    },
    /// Nothing came back in time.
    #[error("Chromium did not answer {what} within {TIMEOUT:?}")]
    Timeout {
        /// What it was waiting for.
        what: String,
    },
    /// Writing a screenshot failed.
    #[error("writing the screenshot {path} failed: {source}")]
    Io {
        /// The file.
        path: PathBuf,
        /// Why.
        #[source]
        source: std::io::Error,
    },
}

/// A headless Chromium with one tab, closed when dropped.
pub struct Browser {
    child: Child,
    profile: PathBuf,
    socket: WebSocket<MaybeTlsStream<TcpStream>>,
    session: String,
    next: u64,
    events: Vec<Value>,
}

impl std::fmt::Debug for Browser {
    fn fmt(&self, f: &mut std::fmt::Formatter<'_>) -> std::fmt::Result {
        f.debug_struct("Browser")
            .field("pid", &self.child.id())
            .finish()
    }
}

impl Browser {
    /// Starts Chromium (headless, a fresh profile, a 1280x900 window) and opens a tab.
    pub fn launch() -> Result<Browser, BrowserError> {
        static N: AtomicUsize = AtomicUsize::new(0);
        let binary = std::env::var("VENOMQA_CHROMIUM").unwrap_or_else(|_| "chromium".into());
        let profile = std::env::temp_dir().join(format!(
            "venomqa-chromium-{}-{}",
            std::process::id(),
            N.fetch_add(1, Ordering::Relaxed)
        ));
        let start = |message: String| BrowserError::Start {
            binary: binary.clone(),
            message,
        };
        let mut child = Command::new(&binary)
            .args([
                "--headless=new",
                "--no-sandbox",
                "--disable-gpu",
                "--disable-quic",
                "--no-first-run",
                "--disable-background-networking",
                "--disable-component-update",
                "--disable-sync",
                "--disable-default-apps",
                "--disable-extensions",
                "--hide-scrollbars",
                "--window-size=1280,900",
                "--remote-debugging-port=0",
            ])
            .arg(format!("--user-data-dir={}", profile.display()))
            .arg("about:blank")
            .stdin(Stdio::null())
            .stdout(Stdio::null())
            .stderr(Stdio::piped())
            .spawn()
            .map_err(|e| start(e.to_string()))?;
        // Chromium prints the browser's DevTools address on stderr; the rest of its
        // output is read on a thread so that it never blocks on a full pipe.
        let stderr = child.stderr.take().expect("piped");
        let (tx, rx) = std::sync::mpsc::channel();
        std::thread::spawn(move || {
            let mut tx = Some(tx);
            let mut seen = String::new();
            for line in BufReader::new(stderr).lines().map_while(Result::ok) {
                if let Some(url) = line.strip_prefix("DevTools listening on ") {
                    if let Some(tx) = tx.take() {
                        let _ = tx.send(Ok(url.trim().to_owned()));
                    }
                } else if tx.is_some() {
                    seen.push_str(&line);
                    seen.push('\n');
                }
            }
            if let Some(tx) = tx {
                let _ = tx.send(Err(seen));
            }
        });
        let url = match rx.recv_timeout(TIMEOUT) {
            Ok(Ok(url)) => url,
            Ok(Err(output)) => {
                let _ = child.kill();
                return Err(start(format!(
                    "it exited before listening: {}",
                    output.trim()
                )));
            }
            Err(_) => {
                let _ = child.kill();
                return Err(start("it printed no DevTools address".into()));
            }
        };
        let (socket, _) = tungstenite::connect(url.as_str())?;
        if let MaybeTlsStream::Plain(tcp) = socket.get_ref() {
            let _ = tcp.set_read_timeout(Some(TIMEOUT));
        }
        let mut browser = Browser {
            child,
            profile,
            socket,
            session: String::new(),
            next: 0,
            events: Vec::new(),
        };
        let target = browser.call("Target.createTarget", json!({"url": "about:blank"}))?;
        let attached = browser.call(
            "Target.attachToTarget",
            json!({"targetId": target["targetId"], "flatten": true}),
        )?;
        browser.session = attached["sessionId"]
            .as_str()
            .unwrap_or_default()
            .to_owned();
        for domain in [
            "Page.enable",
            "Runtime.enable",
            "Log.enable",
            "Network.enable",
        ] {
            browser.call(domain, json!({}))?;
        }
        Ok(browser)
    }

    /// Sends a command (to the tab, once there is one) and returns its result; events
    /// that arrive meanwhile are kept.
    pub fn call(&mut self, method: &str, params: Value) -> Result<Value, BrowserError> {
        self.next += 1;
        let id = self.next;
        let mut message = json!({"id": id, "method": method, "params": params});
        if !self.session.is_empty() {
            message["sessionId"] = json!(self.session);
        }
        self.socket.send(Message::text(message.to_string()))?;
        let deadline = Instant::now() + TIMEOUT;
        loop {
            let reply = self.receive(deadline, method)?;
            if reply["id"].as_u64() == Some(id) {
                if let Some(error) = reply.get("error") {
                    return Err(BrowserError::Command {
                        method: method.to_owned(),
                        message: error["message"].as_str().unwrap_or_default().to_owned(),
                    });
                }
                return Ok(reply["result"].clone());
            }
            self.events.push(reply);
        }
    }

    fn receive(&mut self, deadline: Instant, what: &str) -> Result<Value, BrowserError> {
        loop {
            if Instant::now() > deadline {
                return Err(BrowserError::Timeout { what: what.into() });
            }
            match self.socket.read() {
                Ok(Message::Text(text)) => {
                    return Ok(serde_json::from_str(text.as_str()).unwrap_or(Value::Null));
                }
                Ok(_) => {}
                Err(tungstenite::Error::Io(e))
                    if matches!(
                        e.kind(),
                        std::io::ErrorKind::WouldBlock | std::io::ErrorKind::TimedOut
                    ) =>
                {
                    return Err(BrowserError::Timeout { what: what.into() });
                }
                Err(e) => return Err(e.into()),
            }
        }
    }

    /// Opens `file` and waits for its load event.
    pub fn open(&mut self, file: &Path) -> Result<(), BrowserError> {
        let path = file.canonicalize().unwrap_or_else(|_| file.to_owned());
        let url = format!("file://{}", path.display());
        self.events.clear();
        self.call("Page.navigate", json!({"url": url}))?;
        let deadline = Instant::now() + TIMEOUT;
        if self
            .events
            .iter()
            .any(|e| e["method"] == "Page.loadEventFired")
        {
            return Ok(());
        }
        loop {
            let event = self.receive(deadline, "the page's load event")?;
            let loaded = event["method"] == "Page.loadEventFired";
            self.events.push(event);
            if loaded {
                return Ok(());
            }
        }
    }

    /// Evaluates `expression` in the page and returns its value (promises awaited).
    pub fn eval(&mut self, expression: &str) -> Result<Value, BrowserError> {
        let result = self.call(
            "Runtime.evaluate",
            json!({"expression": expression, "returnByValue": true, "awaitPromise": true}),
        )?;
        if let Some(e) = result.get("exceptionDetails") {
            return Err(BrowserError::Command {
                method: "Runtime.evaluate".into(),
                message: e["exception"]["description"]
                    .as_str()
                    .or(e["text"].as_str())
                    .unwrap_or_default()
                    .to_owned(),
            });
        }
        Ok(result["result"]["value"].clone())
    }

    /// Clicks the first element matching `selector` with the mouse, as a user would
    /// (scrolled into view first), and waits for the page to handle it.
    pub fn click(&mut self, selector: &str) -> Result<(), BrowserError> {
        let at = self.eval(&format!(
            "(() => {{ const e = document.querySelector({selector:?}); if (!e) throw new Error('nothing matches ' + {selector:?}); \
             e.scrollIntoView({{block: 'center'}}); const r = e.getBoundingClientRect(); return [r.left + Math.min(r.width / 2, 40), r.top + r.height / 2]; }})()"
        ))?;
        let (x, y) = (at[0].as_f64().unwrap_or(0.0), at[1].as_f64().unwrap_or(0.0));
        for kind in ["mouseMoved", "mousePressed", "mouseReleased"] {
            self.call(
                "Input.dispatchMouseEvent",
                json!({"type": kind, "x": x, "y": y, "button": "left", "clickCount": 1}),
            )?;
        }
        // What the click queued (a <details>' toggle event, say) runs before this resolves.
        self.eval("new Promise((done) => requestAnimationFrame(() => setTimeout(done, 0)))")?;
        Ok(())
    }

    /// The text the page shows (`document.body.innerText`: what is rendered, not what
    /// is hidden or not built yet).
    pub fn visible_text(&mut self) -> Result<String, BrowserError> {
        Ok(self
            .eval("document.body.innerText")?
            .as_str()
            .unwrap_or_default()
            .to_owned())
    }

    /// Saves a PNG of the whole page at `path`.
    pub fn screenshot(&mut self, path: &Path) -> Result<(), BrowserError> {
        let shot = self.call(
            "Page.captureScreenshot",
            json!({"format": "png", "captureBeyondViewport": true}),
        )?;
        let png = base64::engine::general_purpose::STANDARD
            .decode(shot["data"].as_str().unwrap_or_default())
            .map_err(|e| BrowserError::Command {
                method: "Page.captureScreenshot".into(),
                message: e.to_string(),
            })?;
        let io = |source| BrowserError::Io {
            path: path.to_owned(),
            source,
        };
        if let Some(dir) = path.parent() {
            std::fs::create_dir_all(dir).map_err(io)?;
        }
        std::fs::write(path, png).map_err(io)
    }

    /// Every console error, uncaught exception and error log entry since the page was
    /// opened.
    pub fn errors(&mut self) -> Vec<String> {
        // A round trip first, so events sent before it have arrived.
        let _ = self.eval("0");
        self.events
            .iter()
            .filter_map(|e| match e["method"].as_str()? {
                "Runtime.exceptionThrown" => Some(e["params"]["exceptionDetails"].to_string()),
                "Runtime.consoleAPICalled"
                    if matches!(e["params"]["type"].as_str(), Some("error" | "assert")) =>
                {
                    Some(e["params"]["args"].to_string())
                }
                "Log.entryAdded" if e["params"]["entry"]["level"] == "error" => {
                    Some(e["params"]["entry"]["text"].to_string())
                }
                _ => None,
            })
            .collect()
    }

    /// The URL of every request the page made since it was opened (the page itself
    /// included).
    pub fn requests(&mut self) -> Vec<String> {
        let _ = self.eval("0");
        self.events
            .iter()
            .filter(|e| e["method"] == "Network.requestWillBeSent")
            .filter_map(|e| e["params"]["request"]["url"].as_str().map(str::to_owned))
            .collect()
    }
}

impl Drop for Browser {
    fn drop(&mut self) {
        self.session.clear();
        let _ = self.call("Browser.close", json!({}));
        let _ = self.child.kill();
        let _ = self.child.wait();
        let _ = std::fs::remove_dir_all(&self.profile);
    }
}
