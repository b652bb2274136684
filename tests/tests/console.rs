//! End-to-end tests of the web console with real processes (central, gateway, a station) and a real browser:
//! headless Chromium (Debian's `chromium`) driven through `chromedriver` (Debian's `chromium-driver`) with
//! WebDriver. Screenshots of the main pages are saved as PNG files in `$HOTSPOT_ARTIFACTS_DIR`, by default
//! `target/console-screenshots/`. Without Chromium the test is skipped, except when `CI` is set: then it fails.

#![allow(clippy::unwrap_used, clippy::expect_used, clippy::panic)]

use std::io::Write as _;
use std::path::{Path, PathBuf};
use std::process::{Child, Command, Stdio};
use std::sync::Arc;
use std::time::{Duration, Instant};

use fantoccini::{Client, ClientBuilder, Locator};
use hotspot_e2e::{BrokerSetup, Tracker, World, free_tcp_port, run_cli, station, wait_status};

const ADMIN_PW: &str = "admin password for the e2e test";
const VIEWER_PW: &str = "viewer password for the e2e test";
/// The console's idle timeout in this test (long enough for every step, short enough to wait for).
const IDLE_S: u64 = 12;

/// Chromium and chromedriver, or `None` after saying why (a failure when `CI` is set).
fn browser_installed() -> Option<(PathBuf, PathBuf)> {
    let find = |names: &[&str]| names.iter().map(PathBuf::from).find(|p| p.is_file());
    let chromium = find(&["/usr/bin/chromium", "/usr/bin/chromium-browser"]);
    let driver = find(&["/usr/bin/chromedriver", "/usr/lib/chromium/chromedriver"]);
    match (chromium, driver) {
        (Some(c), Some(d)) => Some((c, d)),
        _ => {
            let why =
                "chromium and chromedriver are needed (apt-get install chromium chromium-driver)";
            assert!(std::env::var_os("CI").is_none(), "{why} (CI is set)");
            eprintln!("SKIPPED: {why}");
            None
        }
    }
}

/// chromedriver on a free port, killed on drop.
struct Driver {
    child: Child,
    port: u16,
}

impl Drop for Driver {
    fn drop(&mut self) {
        let _ = self.child.kill();
        let _ = self.child.wait();
    }
}

fn start_driver(exe: &Path, log: &Path) -> Driver {
    let port = free_tcp_port();
    let child = Command::new(exe)
        .arg(format!("--port={port}"))
        .arg(format!("--log-path={}", log.display()))
        .stdout(Stdio::null())
        .stderr(Stdio::null())
        .spawn()
        .unwrap();
    let deadline = Instant::now() + Duration::from_secs(20);
    while std::net::TcpStream::connect(("127.0.0.1", port)).is_err() {
        assert!(Instant::now() < deadline, "chromedriver did not start");
        std::thread::sleep(Duration::from_millis(100));
    }
    Driver { child, port }
}

/// A new browser session at tablet size (820 x 1180, portrait) that accepts the console's self-signed certificate.
async fn browser(d: &Driver, chromium: &Path) -> Client {
    let caps = serde_json::json!({
        "browserName": "chrome",
        "acceptInsecureCerts": true,
        "goog:chromeOptions": {
            "binary": chromium.display().to_string(),
            "args": ["--headless=new", "--no-sandbox", "--disable-gpu", "--disable-dev-shm-usage",
                     "--window-size=820,1180", "--no-first-run", "--disable-extensions"],
        },
    });
    let serde_json::Value::Object(caps) = caps else {
        unreachable!()
    };
    ClientBuilder::new(hyper_util::client::legacy::connect::HttpConnector::new())
        .capabilities(caps)
        .connect(&format!("http://127.0.0.1:{}", d.port))
        .await
        .expect("WebDriver session")
}

fn artifacts_dir() -> PathBuf {
    let dir = std::env::var_os("HOTSPOT_ARTIFACTS_DIR")
        .map(PathBuf::from)
        .unwrap_or_else(|| {
            Path::new(env!("CARGO_MANIFEST_DIR")).join("../target/console-screenshots")
        });
    std::fs::create_dir_all(&dir).unwrap();
    dir
}

async fn shot(c: &Client, name: &str) {
    let png = c.screenshot().await.unwrap();
    assert!(png.starts_with(b"\x89PNG"), "{name}: not a PNG");
    std::fs::write(artifacts_dir().join(format!("{name}.png")), png).unwrap();
}

async fn js(c: &Client, script: &str) -> serde_json::Value {
    c.execute(script, vec![]).await.unwrap()
}

/// Polls a JavaScript expression until it is true.
async fn wait_js(c: &Client, what: &str, expr: &str, within: Duration) {
    let deadline = Instant::now() + within;
    loop {
        if js(c, &format!("return !!({expr});")).await == serde_json::Value::Bool(true) {
            return;
        }
        if Instant::now() >= deadline {
            let url = c
                .current_url()
                .await
                .map(|u| u.to_string())
                .unwrap_or_default();
            let src = c.source().await.unwrap_or_default();
            panic!("{what}: `{expr}` never held; at {url}:\n{src}");
        }
        tokio::time::sleep(Duration::from_millis(200)).await;
    }
}

async fn text_of(c: &Client) -> String {
    c.find(Locator::Css("body"))
        .await
        .unwrap()
        .text()
        .await
        .unwrap()
}

/// The page fits the window: no horizontal scrolling at tablet width.
async fn fits(c: &Client, page: &str) {
    let v = js(
        c,
        "return [document.documentElement.scrollWidth, window.innerWidth];",
    )
    .await;
    let (w, inner) = (v[0].as_f64().unwrap(), v[1].as_f64().unwrap());
    assert!(
        w <= inner + 1.0,
        "{page} is {w} px wide in a {inner} px window"
    );
}

async fn login(c: &Client, base: &str, name: &str, pw: &str) {
    c.goto(&format!("{base}/")).await.unwrap();
    wait_js(
        c,
        "login form",
        "location.pathname === '/login'",
        Duration::from_secs(10),
    )
    .await;
    c.find(Locator::Id("name"))
        .await
        .unwrap()
        .send_keys(name)
        .await
        .unwrap();
    c.find(Locator::Id("password"))
        .await
        .unwrap()
        .send_keys(pw)
        .await
        .unwrap();
    c.find(Locator::Id("login"))
        .await
        .unwrap()
        .click()
        .await
        .unwrap();
    wait_js(
        c,
        "dashboard after login",
        "document.getElementById('dashboard')",
        Duration::from_secs(15),
    )
    .await;
}

/// `hotspot-gateway user add`, the password on standard input (as a script would do it).
fn add_user(gateway: &str, config: &Path, name: &str, role: &str, pw: &str) {
    let mut child = Command::new(gateway)
        .args(["user", "add", "--config"])
        .arg(config)
        .args(["--name", name, "--role", role])
        .stdin(Stdio::piped())
        .stdout(Stdio::piped())
        .stderr(Stdio::piped())
        .spawn()
        .unwrap();
    writeln!(child.stdin.take().unwrap(), "{pw}").unwrap();
    let out = child.wait_with_output().unwrap();
    assert!(
        out.status.success(),
        "user add {name}: {}{}",
        String::from_utf8_lossy(&out.stdout),
        String::from_utf8_lossy(&out.stderr)
    );
}

/// One HTTPS request to the console, trusting exactly its certificate; returns (status, head, body).
async fn https(cert: &Path, addr: &str, path: &str) -> (u16, String, String) {
    use rustls::pki_types::pem::PemObject as _;
    use tokio::io::{AsyncReadExt as _, AsyncWriteExt as _};
    let mut roots = rustls::RootCertStore::empty();
    for c in rustls::pki_types::CertificateDer::pem_file_iter(cert).unwrap() {
        roots.add(c.unwrap()).unwrap();
    }
    let cfg = rustls::ClientConfig::builder_with_provider(Arc::new(
        rustls::crypto::ring::default_provider(),
    ))
    .with_safe_default_protocol_versions()
    .unwrap()
    .with_root_certificates(roots)
    .with_no_client_auth();
    let tcp = tokio::net::TcpStream::connect(addr).await.unwrap();
    let ip = addr.rsplit_once(':').unwrap().0;
    let name = rustls::pki_types::ServerName::try_from(ip.to_owned()).unwrap();
    let mut tls = tokio_rustls::TlsConnector::from(Arc::new(cfg))
        .connect(name, tcp)
        .await
        .expect("TLS handshake with the console's own certificate");
    tls.write_all(
        format!("GET {path} HTTP/1.1\r\nHost: {addr}\r\nConnection: close\r\n\r\n").as_bytes(),
    )
    .await
    .unwrap();
    let mut out = Vec::new();
    let _ = tls.read_to_end(&mut out).await;
    let text = String::from_utf8_lossy(&out).into_owned();
    let (head, body) = text.split_once("\r\n\r\n").unwrap_or((&text, ""));
    let code = head
        .split_whitespace()
        .nth(1)
        .and_then(|c| c.parse().ok())
        .unwrap_or(0);
    (code, head.to_owned(), body.to_owned())
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn the_console_in_a_real_browser() {
    let Some((chromium, chromedriver)) = browser_installed() else {
        return;
    };
    let mut w = World::new(hotspot_e2e::bins!());
    let (_central, central_port) = w.central(0);
    let broker = BrokerSetup::Embedded(free_tcp_port());
    // Payloads kept an hour after central's answer, so that the admin can still open the biometric data.
    let cfg = w.gateway_config_with(
        &broker,
        central_port,
        hotspot_e2e::TEST_UPLINK,
        "[retention]\npayload_after_central_s = 3600",
    );
    let text = std::fs::read_to_string(&cfg).unwrap().replace(
        "[console]\nlisten = \"127.0.0.1:0\"\n",
        &format!("[console]\nlisten = \"127.0.0.1:0\"\nsession_idle_s = {IDLE_S}\nsample_interval_s = 1\n"),
    );
    assert!(text.contains("session_idle_s"), "{text}");
    std::fs::write(&cfg, text).unwrap();
    let gw = w.gateway(&cfg);
    let console = gw.ready["console"].as_str().unwrap().to_owned();
    let metrics = gw.ready["metrics"].as_str().unwrap().to_owned();
    wait_status(&metrics, |s| s["watchlist_version"] == 1).await;

    // Over real HTTPS, with the certificate the gateway made at first start: health without login, nothing else.
    let cert = w.path("gateway/console-cert.pem");
    let (code, _, body) = https(&cert, &console, "/healthz").await;
    assert_eq!(code, 200, "{body}");
    let (code, head, _) = https(&cert, &console, "/audit").await;
    assert_eq!(code, 303, "{head}");
    assert!(
        head.to_lowercase().contains("location: /login?next=/audit"),
        "{head}"
    );
    let (code, _, _) = https(&cert, &console, "/api/status").await;
    assert_eq!(code, 401);
    let key_mode = {
        use std::os::unix::fs::PermissionsExt as _;
        std::fs::metadata(w.path("gateway/console-key.pem"))
            .unwrap()
            .permissions()
            .mode()
    };
    assert_eq!(key_mode & 0o777, 0o600);

    // The first admin and a viewer, made with the command line while the gateway runs.
    add_user(w.bins.gateway, &cfg, "ana", "admin", ADMIN_PW);
    add_user(w.bins.gateway, &cfg, "vic", "viewer", VIEWER_PW);
    let listed = run_cli(
        w.bins.gateway,
        &["user", "list", "--config", cfg.to_str().unwrap()],
    );
    assert!(
        listed.contains("ana\tadmin") && listed.contains("vic\tviewer"),
        "{listed}"
    );
    assert!(!listed.contains("argon2"), "{listed}");

    let driver = start_driver(&chromedriver, &w.path("chromedriver.log"));
    let base = format!("https://{console}");
    let admin = browser(&driver, &chromium).await;
    login(&admin, &base, "ana", ADMIN_PW).await;
    fits(&admin, "dashboard").await;
    wait_js(
        &admin,
        "charts drawn",
        "document.querySelector('#chart-backlog polyline')",
        Duration::from_secs(15),
    )
    .await;

    // A watchlist subject at a station: the open dashboard updates by itself (server-sent events).
    js(&admin, "window.__sameLoad = 42; return true;").await;
    let mut s = station(broker.port(), "desk-1").await;
    let capture = w.watchlist_capture(0);
    let id = capture.capture_id.to_string();
    let short = &id[..8];
    let mut t = Tracker::default();
    t.send(&s, capture).await;
    wait_js(
        &admin,
        "dashboard shows the hit live",
        &format!("document.querySelector('#activity li.hit[data-capture=\"{short}\"]')"),
        Duration::from_secs(30),
    )
    .await;
    wait_js(
        &admin,
        "counters updated live",
        "document.getElementById('f-captures').textContent.includes('stored 1')",
        Duration::from_secs(15),
    )
    .await;
    assert_eq!(
        js(&admin, "return window.__sameLoad;").await,
        42,
        "the page was reloaded"
    );
    shot(&admin, "dashboard").await;
    assert!(
        t.pump(
            &mut s,
            Duration::from_secs(60),
            Duration::from_secs(5),
            Tracker::complete
        )
        .await,
        "the station got both answers"
    );

    // The hit is highlighted in the results, and its page says so.
    admin.goto(&format!("{base}/results")).await.unwrap();
    let row = admin
        .find(Locator::XPath(&format!(
            "//tr[contains(@class,'hit')][.//a[contains(@href,'{id}')]]"
        )))
        .await
        .expect("the hit's row, highlighted");
    assert!(row.text().await.unwrap().contains("P000"));
    fits(&admin, "results").await;
    shot(&admin, "results").await;
    row.find(Locator::Css("a"))
        .await
        .unwrap()
        .click()
        .await
        .unwrap();
    wait_js(
        &admin,
        "result page",
        "document.getElementById('hit-banner')",
        Duration::from_secs(10),
    )
    .await;
    shot(&admin, "result").await;
    admin
        .find(Locator::Id("show-images"))
        .await
        .unwrap()
        .click()
        .await
        .unwrap();
    wait_js(
        &admin,
        "biometric data page",
        "document.getElementById('images')",
        Duration::from_secs(10),
    )
    .await;
    assert!(text_of(&admin).await.contains("minutiae template"));
    shot(&admin, "images").await;

    for (path, name, marker) in [
        ("/stations", "stations", "desk-1"),
        ("/plugins", "plugins", "Alerts routed to the console"),
        ("/audit?action=console.images_viewed", "audit", id.as_str()),
        ("/settings", "settings", "SHA-256 fingerprint"),
        ("/users", "users", "vic"),
    ] {
        admin.goto(&format!("{base}{path}")).await.unwrap();
        let body = text_of(&admin).await;
        assert!(body.contains(marker), "{path}: {body}");
        fits(&admin, name).await;
        shot(&admin, name).await;
    }
    // Back on the dashboard; from here on the admin does nothing (for the idle timeout below).
    admin.goto(&format!("{base}/")).await.unwrap();
    wait_js(
        &admin,
        "dashboard",
        "document.getElementById('dashboard')",
        Duration::from_secs(10),
    )
    .await;
    let idle_from = Instant::now();

    // A viewer: no admin pages, not even by typing their address.
    let viewer = browser(&driver, &chromium).await;
    login(&viewer, &base, "vic", VIEWER_PW).await;
    assert!(
        viewer.find(Locator::Css("a[href='/audit']")).await.is_err(),
        "the viewer's menu offers the audit log"
    );
    for path in [
        "/audit",
        "/settings",
        "/users",
        &format!("/results/{id}/images"),
    ] {
        viewer.goto(&format!("{base}{path}")).await.unwrap();
        let body = text_of(&viewer).await;
        assert!(
            body.contains("This page is for admins"),
            "viewer on {path}: {body}"
        );
    }
    shot(&viewer, "viewer-refused").await;
    viewer.goto(&format!("{base}/results/{id}")).await.unwrap();
    assert!(viewer.find(Locator::Id("show-images")).await.is_err());

    // CSRF: a page of another origin that posts to the console is refused; so is a same-origin post without the
    // session's token. The viewer stays logged in.
    let forged = format!(
        "data:text/html,<form id=f method=post action='{base}/logout'><input name=csrf value=guess></form>\
         <script>document.getElementById('f').submit()</script>"
    );
    viewer.goto(&forged).await.unwrap();
    wait_js(
        &viewer,
        "forged post answered",
        "location.pathname === '/logout'",
        Duration::from_secs(10),
    )
    .await;
    assert!(
        text_of(&viewer).await.contains("refused"),
        "{}",
        text_of(&viewer).await
    );
    viewer.goto(&format!("{base}/")).await.unwrap();
    let status = js(
        &viewer,
        "return fetch('/logout', {method: 'POST', headers: {'content-type': \
         'application/x-www-form-urlencoded'}, body: 'csrf=wrong', redirect: 'manual'}).then(r => r.status);",
    )
    .await;
    assert_eq!(status, 403);
    viewer.goto(&format!("{base}/stations")).await.unwrap();
    assert!(
        viewer.find(Locator::Id("stations")).await.is_ok(),
        "the viewer was logged out"
    );
    // The real logout button works (its form carries the token).
    viewer
        .find(Locator::Id("logout"))
        .await
        .unwrap()
        .click()
        .await
        .unwrap();
    wait_js(
        &viewer,
        "logged out",
        "location.search.includes('m=out')",
        Duration::from_secs(10),
    )
    .await;
    viewer.goto(&format!("{base}/")).await.unwrap();
    wait_js(
        &viewer,
        "back at the login form",
        "location.pathname === '/login'",
        Duration::from_secs(10),
    )
    .await;
    viewer.close().await.unwrap();

    // The admin's dashboard was left alone: the session ends after IDLE_S and the page goes to the login form
    // by itself (the event stream says so; it does not keep the session alive).
    wait_js(
        &admin,
        "idle session ended",
        "location.pathname === '/login' && location.search.includes('m=expired')",
        Duration::from_secs(IDLE_S + 20),
    )
    .await;
    assert!(idle_from.elapsed() >= Duration::from_secs(IDLE_S - 1));
    shot(&admin, "session-expired").await;
    admin.goto(&format!("{base}/results")).await.unwrap();
    wait_js(
        &admin,
        "still logged out",
        "location.pathname === '/login'",
        Duration::from_secs(10),
    )
    .await;
    admin.close().await.unwrap();

    // Everything above is in the audit log, whose chain is intact despite the command-line writers.
    let log = hotspot_e2e::wait_file_contains(
        &w.path("gateway/audit.log"),
        &[
            "\"user.added\"",
            "\"console.login\"",
            "\"console.result_viewed\"",
            "\"console.images_viewed\"",
            "\"console.csrf_refused\"",
            "\"console.logout\"",
            "\"console.session_expired\"",
        ],
    )
    .await;
    assert!(!log.contains(ADMIN_PW) && !log.contains(VIEWER_PW));
    let out = run_cli(
        w.bins.gateway,
        &["audit", "verify", "--config", cfg.to_str().unwrap()],
    );
    assert!(out.contains("chain intact"), "{out}");
    let (_, m) = hotspot_e2e::http_get(&metrics, "/metrics");
    assert!(
        m.contains("hotspot_console_logins_total{outcome=\"ok\"} 2"),
        "{m}"
    );
    assert!(
        m.contains("hotspot_local_results_total{decision=\"hit\"} 1"),
        "{m}"
    );
    // The hit's way to its answer, stage by stage: each stage observed once.
    for stage in ["probe", "queue", "match"] {
        assert!(
            m.contains(&format!(
                "hotspot_local_stage_seconds_count{{stage=\"{stage}\"}} 1"
            )),
            "{stage}: {m}"
        );
    }
}
