//! The timeline page in a real browser: headless Chromium loads the page of a tiny run and
//! the test reads back what the page's script wrote into the DOM after drawing.
//!
//! Skipped, with a message, when no Chromium is installed; `.ci/run` installs it and sets
//! `FERRY_REQUIRE_CHROMIUM=1`, which turns a missing browser into a failure.

mod support;

use std::path::{Path, PathBuf};
use std::process::{Command, Stdio};
use std::time::{Duration, Instant};

use ferry::timeline::Views;
use ferry_simulator::Trace;
use support::fresh_directory;

/// `FERRY_CHROMIUM`, else the first of the usual names on PATH.
fn chromium() -> Option<PathBuf> {
    if let Some(path) = std::env::var_os("FERRY_CHROMIUM") {
        return Some(PathBuf::from(path));
    }
    let paths = std::env::var_os("PATH")?;
    ["chromium", "chromium-browser", "google-chrome", "google-chrome-stable"].iter().find_map(|name| {
        std::env::split_paths(&paths)
            .map(|directory| directory.join(name))
            .find(|candidate| candidate.is_file())
    })
}

fn browser_or_skip(test: &str) -> Option<PathBuf> {
    let found = chromium();
    if found.is_none() {
        assert!(
            std::env::var_os("FERRY_REQUIRE_CHROMIUM").is_none(),
            "FERRY_REQUIRE_CHROMIUM is set but no chromium binary was found (install the Debian package `chromium`)"
        );
        eprintln!(
            "skipped {test}: no chromium binary on PATH (install the Debian package `chromium`, or set FERRY_CHROMIUM)"
        );
    }
    found
}

/// Runs headless Chromium on `page` with `arguments`, killing it after a minute.
fn headless(browser: &Path, profile: &Path, page: &Path, arguments: &[&str]) -> String {
    let mut child = Command::new(browser)
        .args(["--headless", "--no-sandbox", "--disable-gpu", "--disable-dev-shm-usage", "--no-first-run"])
        .arg("--virtual-time-budget=5000")
        .arg(format!("--user-data-dir={}", profile.display()))
        .args(arguments)
        .arg(format!("file://{}", page.display()))
        .stdout(Stdio::piped())
        .stderr(Stdio::null())
        .spawn()
        .expect("chromium starts");
    let started = Instant::now();
    let mut stdout = child.stdout.take().expect("piped stdout");
    let reader = std::thread::spawn(move || {
        let mut text = String::new();
        let _ = std::io::Read::read_to_string(&mut stdout, &mut text);
        text
    });
    loop {
        if child.try_wait().expect("chromium can be waited for").is_some() {
            break;
        }
        if started.elapsed() > Duration::from_secs(60) {
            let _ = child.kill();
            let _ = child.wait();
            panic!("chromium did not finish within a minute");
        }
        std::thread::sleep(Duration::from_millis(50));
    }
    reader.join().expect("the reader thread")
}

/// The value of `name="…"` on the `<html>` element of a dumped DOM.
fn attribute(dom: &str, name: &str) -> Option<String> {
    let html = &dom[dom.find("<html")?..];
    let html = &html[..html.find('>')?];
    let start = html.find(&format!(" {name}=\""))? + name.len() + 3;
    Some(html[start..start + html[start..].find('"')?].to_owned())
}

#[test]
fn timeline_draws_every_arrow_of_a_tiny_run_without_script_errors() {
    let Some(browser) = browser_or_skip("timeline_draws_every_arrow_of_a_tiny_run_without_script_errors")
    else {
        return;
    };
    let directory = fresh_directory("timeline_browser");
    let scenario =
        ferry::scenario::load(Path::new(env!("CARGO_MANIFEST_DIR")).join("scenarios/quickstart.yaml"))
            .expect("a library scenario");
    let page = directory.join("quickstart.html");
    let (trace, views) =
        Views::attach(&scenario, Trace::default(), Some(&page), None).expect("a writable path");
    let report = ferry::run::run(&scenario, 1, trace);
    views.finish(&report).expect("the page is written");

    let page_url = directory.join("quickstart.html#selftest");
    let dom = headless(&browser, &directory.join("profile"), &page_url, &["--dump-dom"]);
    let read = |name: &str| {
        attribute(&dom, name).unwrap_or_else(|| panic!("no {name} in {}", &dom[..dom.len().min(600)]))
    };
    assert_eq!(read("data-errors"), "0", "the page reported script errors: {dom}");
    assert_eq!(read("data-rendered"), "1");
    assert_eq!(read("data-lanes"), "3");
    let stats = &report.stats;
    assert_eq!(read("data-messages"), stats.sent.to_string(), "a message per send");
    let arrows = stats.sent + stats.duplicated;
    assert_eq!(read("data-arrows"), arrows.to_string(), "an arrow per copy of each message");
    assert_eq!(read("data-aggregated"), "0", "a tiny run is drawn arrow by arrow");
    assert_eq!(read("data-drawn"), arrows.to_string(), "and every arrow is on screen at first");
    // Hovering the first arrow shows the decoded lines of its send and of its delivery.
    let hovered = read("data-hover-arrow");
    assert!(hovered.starts_with("[0.000000s] a -&gt; b #1 send Hello"), "{hovered}");
    assert!(
        hovered.contains("a -&gt; b #1 delivered") || hovered.contains("a -&gt; b #1 dropped"),
        "{hovered}"
    );

    let screenshot = directory.join("quickstart.png");
    headless(
        &browser,
        &directory.join("profile"),
        &page,
        &["--hide-scrollbars", "--window-size=1200,500", &format!("--screenshot={}", screenshot.display())],
    );
    let png = std::fs::read(&screenshot).expect("chromium wrote the screenshot");
    assert!(png.starts_with(b"\x89PNG") && png.len() > 10_000, "a real picture, {} bytes", png.len());
}

#[test]
fn script_errors_are_written_into_the_page() {
    let Some(browser) = browser_or_skip("script_errors_are_written_into_the_page") else { return };
    let directory = fresh_directory("timeline_browser_errors");
    let scenario =
        ferry::scenario::load(Path::new(env!("CARGO_MANIFEST_DIR")).join("scenarios/quickstart.yaml"))
            .expect("a library scenario");
    let page = directory.join("good.html");
    let (trace, views) =
        Views::attach(&scenario, Trace::default(), Some(&page), None).expect("a writable path");
    views.finish(&ferry::run::run(&scenario, 1, trace)).expect("the page is written");
    // The same page with its data cut short: the script must fail, and say so in the DOM.
    let text = std::fs::read_to_string(&page).expect("the page");
    let open = r#"id="ferry-data">"#;
    let start = text.find(open).expect("the data block") + open.len();
    let broken = format!(
        "{}{{\"nodes\": [{}",
        &text[..start],
        &text[start + text[start..].find("</script>").expect("end")..]
    );
    let broken_page = directory.join("broken.html");
    std::fs::write(&broken_page, broken).expect("writable");
    let dom = headless(&browser, &directory.join("profile"), &broken_page, &["--dump-dom"]);
    assert_eq!(attribute(&dom, "data-errors").as_deref(), Some("1"), "{dom}");
    assert_eq!(attribute(&dom, "data-rendered").as_deref(), Some("0"));
    assert!(dom.contains("error: SyntaxError"), "the error is shown on the page");
}
