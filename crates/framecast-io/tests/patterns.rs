//! Synthetic patterns: determinism, exact patches, motion, any size.

use framecast_core::PixelFormat;
use framecast_io::{
    render_into, test_card_patches, ColourPatch, FrameSource, IoError, PatternKind, PatternSource,
};

fn render(kind: PatternKind, t: u64, w: u32, h: u32) -> Vec<u8> {
    let mut buf = vec![0u8; (w * h * 4) as usize];
    render_into(kind, t, w, h, &mut buf).unwrap();
    buf
}

fn in_patch(patches: &[ColourPatch], x: u32, y: u32) -> bool {
    patches
        .iter()
        .any(|p| x >= p.x && x < p.x + p.w && y >= p.y && y < p.y + p.h)
}

#[test]
fn deterministic() {
    for kind in PatternKind::ALL {
        for t in [0, 1, 77, 1_000_003] {
            assert_eq!(
                render(kind, t, 97, 61),
                render(kind, t, 97, 61),
                "{kind} {t}"
            );
        }
    }
    // PatternSource frame i == render_into(i).
    let mut s = PatternSource::new(PatternKind::Plasma, 40, 30, (30, 1), Some(3)).unwrap();
    for t in 0..3 {
        let f = s.next_frame().unwrap().unwrap();
        assert_eq!(f.format(), PixelFormat::Rgba8);
        assert_eq!(f.data(), render(PatternKind::Plasma, t, 40, 30));
    }
    assert!(s.next_frame().unwrap().is_none());
    assert_eq!(s.frame_count_hint(), Some(3));
}

#[test]
fn test_card_patches_are_exact_large_and_fixed() {
    let required = [
        "white",
        "yellow",
        "cyan",
        "green",
        "magenta",
        "red",
        "blue",
        "black",
        "mid-grey",
        "dark-grey",
        "near-white",
    ];
    for (w, h) in [(1920, 1080), (1280, 720), (320, 240), (641, 359), (96, 64)] {
        let patches = test_card_patches(w, h);
        for name in required {
            assert!(patches.iter().any(|p| p.name == name), "{name} missing");
        }
        for p in &patches {
            assert!(p.w * 12 >= w, "{w}x{h}: {} is {} wide", p.name, p.w);
            assert!(p.h * 8 >= h, "{w}x{h}: {} is {} tall", p.name, p.h);
            assert!(
                p.x > 0 && p.y > 0 && p.x + p.w < w && p.y + p.h < h,
                "{p:?} touches an edge"
            );
            for q in &patches {
                let apart =
                    p.x + p.w <= q.x || q.x + q.w <= p.x || p.y + p.h <= q.y || q.y + q.h <= p.y;
                assert!(std::ptr::eq(p, q) || apart, "{p:?} overlaps {q:?}");
            }
        }
        for t in [0, 1, 2, 59, 600, 12345] {
            let img = render(PatternKind::TestCard, t, w, h);
            for p in &patches {
                for y in p.y..p.y + p.h {
                    for x in p.x..p.x + p.w {
                        let i = ((y * w + x) * 4) as usize;
                        assert_eq!(
                            &img[i..i + 4],
                            &[p.rgb[0], p.rgb[1], p.rgb[2], 255],
                            "{w}x{h} frame {t}: {} at {x},{y}",
                            p.name
                        );
                    }
                }
            }
        }
    }
}

#[test]
fn test_card_moves_outside_patches() {
    for (w, h) in [(320, 240), (1280, 720), (97, 61)] {
        let patches = test_card_patches(w, h);
        for t in [0, 1, 30, 299] {
            let a = render(PatternKind::TestCard, t, w, h);
            let b = render(PatternKind::TestCard, t + 1, w, h);
            let mut changed = 0;
            for y in 0..h {
                for x in 0..w {
                    let i = ((y * w + x) * 4) as usize;
                    if a[i..i + 4] != b[i..i + 4] {
                        assert!(!in_patch(&patches, x, y), "patch pixel {x},{y} changed");
                        changed += 1;
                    }
                }
            }
            // The scrolling ramp alone changes a whole strip.
            assert!(
                changed as u32 >= w * (h / 12) / 2,
                "{w}x{h} frame {t}: only {changed} changed"
            );
        }
    }
}

#[test]
fn other_patterns_animate() {
    for kind in [
        PatternKind::MovingBands,
        PatternKind::Gradient,
        PatternKind::Plasma,
    ] {
        let a = render(kind, 10, 160, 90);
        let b = render(kind, 11, 160, 90);
        let changed = a.chunks(4).zip(b.chunks(4)).filter(|(p, q)| p != q).count();
        // Bands move only at their edges: a few pixels per band per frame.
        assert!(
            changed > 160 * 90 / 50,
            "{kind}: only {changed} pixels changed"
        );
        // Alpha is opaque everywhere.
        assert!(a.chunks(4).all(|p| p[3] == 255), "{kind}");
        // Not a flat picture.
        let distinct: std::collections::HashSet<&[u8]> = a.chunks(4).collect();
        assert!(distinct.len() >= 5, "{kind}: {} colours", distinct.len());
    }
}

#[test]
fn any_size_works() {
    for kind in PatternKind::ALL {
        for (w, h) in [
            (1, 1),
            (2, 1),
            (1, 2),
            (3, 3),
            (7, 5),
            (33, 17),
            (1, 300),
            (300, 1),
            (13, 200),
        ] {
            for t in [0, 1, u64::MAX / 3] {
                let img = render(kind, t, w, h);
                assert!(img.chunks(4).all(|p| p[3] == 255));
            }
            let patches = test_card_patches(w, h);
            assert!(patches
                .iter()
                .all(|p| p.w == 0 || p.h == 0 || (p.x + p.w <= w && p.y + p.h <= h)));
        }
    }
    let mut s = PatternSource::new(PatternKind::TestCard, 1, 1, (30, 1), None).unwrap();
    assert_eq!(s.frame_count_hint(), None);
    assert_eq!(s.next_frame().unwrap().unwrap().data().len(), 4);
}

#[test]
fn names_parse_and_errors_list_them() {
    for (s, k) in [
        ("testcard", PatternKind::TestCard),
        ("test-card", PatternKind::TestCard),
        ("bands", PatternKind::MovingBands),
        ("moving-bands", PatternKind::MovingBands),
        ("gradient", PatternKind::Gradient),
        ("Plasma", PatternKind::Plasma),
    ] {
        assert_eq!(s.parse::<PatternKind>().unwrap(), k);
    }
    for k in PatternKind::ALL {
        assert_eq!(k.name().parse::<PatternKind>().unwrap(), k);
    }
    let err = "smpte".parse::<PatternKind>().unwrap_err();
    assert!(matches!(err, IoError::UnknownPattern { .. }));
    let msg = err.to_string();
    for name in ["\"smpte\"", "testcard", "bands", "gradient", "plasma"] {
        assert!(msg.contains(name), "{msg}");
    }
}

#[test]
fn small_buffer_and_bad_source_are_errors() {
    let mut buf = vec![0u8; 10];
    let err = render_into(PatternKind::Gradient, 0, 4, 4, &mut buf).unwrap_err();
    assert!(err.to_string().contains("64"), "{err}");
    assert!(PatternSource::new(PatternKind::Plasma, 0, 4, (30, 1), None).is_err());
    assert!(PatternSource::new(PatternKind::Plasma, 4, 4, (30, 0), None).is_err());
}

#[test]
fn test_card_mismatch_finds_a_wrong_patch_and_passes_the_card() {
    let (w, h) = (320, 240);
    let mut rgba = vec![0u8; (w * h * 4) as usize];
    render_into(PatternKind::TestCard, 0, w, h, &mut rgba).unwrap();
    assert_eq!(framecast_io::test_card_mismatch(&rgba, w, h, 4, 0), None);
    let p = &test_card_patches(w, h)[3];
    let i = (((p.y + p.h / 2) * w + p.x + p.w / 2) * 4) as usize;
    rgba[i + 1] = rgba[i + 1].wrapping_add(40);
    let m = framecast_io::test_card_mismatch(&rgba, w, h, 4, 8).expect("a mismatch");
    assert!(m.contains(p.name), "{m}");
    assert!(framecast_io::test_card_mismatch(&rgba[..100], w, h, 4, 8).is_some());
}
