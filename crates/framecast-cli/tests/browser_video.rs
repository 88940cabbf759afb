//! Chromium's `<video>` plays our fast-start MP4 and shows the test card's colours.
//!
//! Headless Chromium loads a page next to the MP4, seeks into it, draws the frame on a canvas
//! and prints the size, duration and the colour at the centre of every test-card patch into the
//! DOM, which `--dump-dom` returns.
//!
//! Observed with Chromium 156 headless (`--disable-gpu`): its software canvas path converts
//! BT.709 video with BT.601 coefficients, for libx264's BT.709 files as much as for ours (blue
//! 191 shows as ~181). So BT.601 streams are checked against the patch colours, and BT.709
//! streams against what the same browser shows for a libx264 encode of the same picture.

use framecast_io::test_card_patches;
use std::path::Path;
use std::process::Command;

fn chromium() -> String {
    for name in ["chromium", "chromium-browser", "google-chrome"] {
        if Command::new(name)
            .arg("--version")
            .output()
            .is_ok_and(|o| o.status.success())
        {
            return name.to_string();
        }
    }
    panic!("Chromium is required for this test: apt-get install chromium (./scripts/test.sh installs it)");
}

/// Run `page` in headless Chromium and return the text of `<pre id=out>` once it is no longer
/// "pending". Media loads on real threads, which the virtual-time budget does not always wait
/// for on a loaded machine, so a page still pending is run again with a longer budget.
fn run_page(dir: &Path, page: &str) -> String {
    let html = dir.join("page.html");
    std::fs::write(&html, page).unwrap();
    let mut last = String::new();
    for (attempt, budget) in [5_000, 15_000, 30_000, 60_000].into_iter().enumerate() {
        let profile = dir.join(format!("profile-{attempt}"));
        let out = Command::new(chromium())
            .args([
                "--headless",
                "--no-sandbox",
                "--disable-gpu",
                "--disable-quic",
                "--no-first-run",
                "--disable-background-networking",
                "--disable-component-update",
                "--disable-sync",
                "--allow-file-access-from-files",
                "--dump-dom",
            ])
            .arg(format!("--virtual-time-budget={budget}"))
            .arg(format!("--user-data-dir={}", profile.display()))
            .arg(format!("file://{}", html.display()))
            .output()
            .expect("start chromium");
        let dom = String::from_utf8_lossy(&out.stdout).to_string();
        let start = dom
            .find("<pre id=\"out\">")
            .unwrap_or_else(|| panic!("no result in the page: {dom}"))
            + 14;
        let end = dom[start..].find("</pre>").unwrap() + start;
        last = dom[start..end].replace("&quot;", "\"");
        if last != "pending" {
            return last;
        }
    }
    last
}

fn framecast(args: &[&str], out: &Path) {
    let status = Command::new(env!("CARGO_BIN_EXE_framecast"))
        .args(args)
        .arg("-o")
        .arg(out)
        .status()
        .unwrap();
    assert!(status.success(), "framecast {args:?} failed");
}

/// Load `mp4` in a `<video>`, seek to `at` seconds and sample `points`.
fn sample(dir: &Path, mp4: &str, at: f64, points: &[(u32, u32)]) -> serde_json::Value {
    let pts: Vec<String> = points.iter().map(|(x, y)| format!("[{x},{y}]")).collect();
    let page = format!(
        r#"<!doctype html><html><body><video id=v muted playsinline src="{mp4}"></video><pre id=out>pending</pre>
<script>
const v = document.getElementById('v'), out = document.getElementById('out');
const points = [{}];
v.addEventListener('error', () => {{ out.textContent = 'ERROR ' + (v.error && v.error.message); }});
v.addEventListener('loadeddata', () => {{ v.currentTime = {at}; }});
v.addEventListener('seeked', () => {{
  const c = document.createElement('canvas'); c.width = v.videoWidth; c.height = v.videoHeight;
  const g = c.getContext('2d'); g.drawImage(v, 0, 0);
  const px = points.map(([x, y]) => Array.from(g.getImageData(x, y, 1, 1).data.slice(0, 3)));
  out.textContent = JSON.stringify({{w: v.videoWidth, h: v.videoHeight, d: v.duration, px}});
}});
</script></body></html>"#,
        pts.join(",")
    );
    let result = run_page(dir, &page);
    serde_json::from_str(&result).unwrap_or_else(|_| panic!("page said: {result}"))
}

fn pixels(v: &serde_json::Value) -> Vec<[i64; 3]> {
    v["px"]
        .as_array()
        .unwrap()
        .iter()
        .map(|p| [0, 1, 2].map(|c| p[c].as_i64().unwrap()))
        .collect()
}

fn compare(names: &[&str], got: &[[i64; 3]], want: &[[i64; 3]], tolerance: i64) {
    let mut worst = 0;
    let mut report = String::new();
    for ((name, g), w) in names.iter().zip(got).zip(want) {
        worst = worst.max((0..3).map(|c| (g[c] - w[c]).abs()).max().unwrap());
        report.push_str(&format!("{name}: Chromium shows {g:?}, expected {w:?}\n"));
    }
    assert!(worst <= tolerance, "a patch is off by {worst}:\n{report}");
}

#[test]
fn chromium_plays_bt601_mp4_with_the_patch_colours() {
    let dir = tempfile::tempdir().unwrap();
    framecast(
        &[
            "encode",
            "--pattern",
            "testcard",
            "--size",
            "640x360",
            "--frames",
            "30",
            "-q",
            "--color",
            "bt601",
        ],
        &dir.path().join("card.mp4"),
    );
    let patches = test_card_patches(640, 360);
    let points: Vec<_> = patches
        .iter()
        .map(|p| (p.x + p.w / 2, p.y + p.h / 2))
        .collect();
    let v = sample(dir.path(), "card.mp4", 0.5, &points);
    assert_eq!(
        (v["w"].as_i64(), v["h"].as_i64()),
        (Some(640), Some(360)),
        "{v}"
    );
    let d = v["d"].as_f64().unwrap();
    assert!((d - 1.0).abs() < 0.01, "duration {d}");
    let names: Vec<&str> = patches.iter().map(|p| p.name).collect();
    let want: Vec<[i64; 3]> = patches.iter().map(|p| p.rgb.map(i64::from)).collect();
    compare(&names, &pixels(&v), &want, 6);
}

#[test]
fn chromium_shows_bt709_mp4_like_libx264s() {
    let dir = tempfile::tempdir().unwrap();
    framecast(
        &[
            "encode",
            "--pattern",
            "testcard",
            "--size",
            "640x360",
            "--frames",
            "1",
            "-q",
        ],
        &dir.path().join("ours.mp4"),
    );
    // The same picture through libx264 with BT.709 limited signalling, from the RGB test card.
    framecast(
        &[
            "encode",
            "--pattern",
            "testcard",
            "--size",
            "640x360",
            "--frames",
            "1",
            "-q",
        ],
        &dir.path().join("one.h264"),
    );
    let rgb = dir.path().join("one.rgb");
    let decode = Command::new("ffmpeg")
        .args(["-v", "error", "-y", "-i"])
        .arg(dir.path().join("one.h264"))
        .args(["-f", "rawvideo", "-pix_fmt", "rgb24"])
        .arg(&rgb)
        .status()
        .expect("ffmpeg is required: apt-get install ffmpeg");
    assert!(decode.success());
    let x264 = Command::new("ffmpeg")
        .args([
            "-v", "error", "-y", "-f", "rawvideo", "-pix_fmt", "rgb24", "-s", "640x360", "-i",
        ])
        .arg(&rgb)
        .args([
            "-vf",
            "scale=out_color_matrix=bt709:out_range=tv,format=yuv420p",
            "-c:v",
            "libx264",
        ])
        .args([
            "-colorspace",
            "bt709",
            "-color_primaries",
            "bt709",
            "-color_trc",
            "bt709",
            "-color_range",
            "tv",
        ])
        .arg(dir.path().join("x264.mp4"))
        .status()
        .unwrap();
    assert!(x264.success());
    let patches = test_card_patches(640, 360);
    let points: Vec<_> = patches
        .iter()
        .map(|p| (p.x + p.w / 2, p.y + p.h / 2))
        .collect();
    let ours = sample(dir.path(), "ours.mp4", 0.0, &points);
    let peer = sample(dir.path(), "x264.mp4", 0.0, &points);
    assert_eq!(
        (ours["w"].as_i64(), ours["h"].as_i64()),
        (Some(640), Some(360)),
        "{ours}"
    );
    let names: Vec<&str> = patches.iter().map(|p| p.name).collect();
    compare(&names, &pixels(&ours), &pixels(&peer), 4);
}
