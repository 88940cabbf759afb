//! The conformance suite over every compiled-in backend, synchronous and pipelined.
//! On a Mac built with `--features videotoolbox` this covers VideoToolbox unchanged.

use framecast_encode::conformance::{run, Check};
use framecast_encode::{registry, BackpressurePolicy, EncodeMode};

fn assert_all(backend: &str, mode: EncodeMode, checks: Vec<Check>) {
    let mut failed = Vec::new();
    for c in &checks {
        match &c.result {
            Ok(()) => eprintln!("ok   {backend} {mode:?}: {}", c.name),
            Err(e) => {
                eprintln!("FAIL {backend} {mode:?}: {}: {e}", c.name);
                failed.push(format!("{}: {e}", c.name));
            }
        }
    }
    assert!(!checks.is_empty());
    assert!(
        failed.is_empty(),
        "{backend} {mode:?} failed {} checks:\n{}",
        failed.len(),
        failed.join("\n")
    );
}

fn available() -> Vec<&'static str> {
    let names: Vec<_> = registry::backends().iter().map(|b| b.name).collect();
    assert!(!names.is_empty(), "no backend compiled in");
    names
}

#[test]
fn conformance_sync() {
    for name in available() {
        assert_all(name, EncodeMode::Sync, run(name, EncodeMode::Sync));
    }
}

#[test]
fn conformance_pipelined() {
    for name in available() {
        let mode = EncodeMode::Pipelined {
            max_in_flight: 3,
            policy: BackpressurePolicy::Block,
        };
        assert_all(name, mode, run(name, mode));
    }
}

#[test]
fn expected_keyframe_rule() {
    use framecast_encode::conformance::expected_keyframes;
    assert_eq!(expected_keyframes(35, 10, &[]), vec![0, 10, 20, 30]);
    assert_eq!(expected_keyframes(30, 10, &[4]), vec![0, 4, 14, 24]);
    assert_eq!(expected_keyframes(20, 0, &[7]), vec![0, 7]);
}
