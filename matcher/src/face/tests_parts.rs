//! Tests of the parts that need no model: embedding codec, alignment geometry, blur measure, index, fusion.
#![allow(clippy::unwrap_used, clippy::expect_used, clippy::panic)]

use image::{Rgb, RgbImage};
use rand::rngs::StdRng;
use rand::{Rng, SeedableRng};

use super::align::{CROP, Crop, Similarity, TEMPLATE, align, warp};
use super::embedding::{EMBEDDING_DIM, ENCODED_LEN, Embedding, EmbeddingDecodeError};
use super::fusion::{
    DecisionThresholds, FACE_MATCH_THRESHOLD, FaceDecision, face_fmr, face_score, fuse,
    threshold_for_far,
};
use super::index::FaceIndex;
use super::quality::blur_effect;

fn random_embedding(rng: &mut StdRng) -> Embedding {
    let raw: [f32; EMBEDDING_DIM] = std::array::from_fn(|_| rng.random_range(-1.0..1.0));
    Embedding::from_raw(&raw).unwrap()
}

/// An embedding at cosine ~`c` from `base`.
fn near(base: &Embedding, c: f32, rng: &mut StdRng) -> Embedding {
    let noise = random_embedding(rng);
    let raw: [f32; EMBEDDING_DIM] = std::array::from_fn(|i| {
        c * base.as_slice()[i] + (1.0 - c * c).sqrt() * noise.as_slice()[i]
    });
    Embedding::from_raw(&raw).unwrap()
}

#[test]
fn embedding_codec_round_trips_within_quantisation_error() {
    let mut rng = StdRng::seed_from_u64(1);
    for _ in 0..200 {
        let e = random_embedding(&mut rng);
        let bytes = e.encode();
        assert_eq!(bytes.len(), ENCODED_LEN);
        let back = Embedding::decode(&bytes).unwrap();
        assert!(e.cosine(&back) > 0.999, "{}", e.cosine(&back));
        assert_eq!(
            back.encode()[6..],
            bytes[6..],
            "re-encoding keeps the components"
        );
    }
}

#[test]
fn embedding_decode_refuses_bad_bytes() {
    let e = random_embedding(&mut StdRng::seed_from_u64(2));
    let good = e.encode();
    assert_eq!(
        Embedding::decode(&good[..10]),
        Err(EmbeddingDecodeError::Length(10))
    );
    let mut b = good.clone();
    b[0] = 9;
    assert_eq!(Embedding::decode(&b), Err(EmbeddingDecodeError::Format(9)));
    let mut b = good.clone();
    b[1] = 7;
    assert_eq!(Embedding::decode(&b), Err(EmbeddingDecodeError::Model(7)));
    let mut b = good.clone();
    b[2..6].copy_from_slice(&f32::NAN.to_le_bytes());
    assert_eq!(Embedding::decode(&b), Err(EmbeddingDecodeError::Degenerate));
    let mut b = good;
    b[6..].fill(0);
    assert_eq!(Embedding::decode(&b), Err(EmbeddingDecodeError::Degenerate));
    assert!(Embedding::from_raw(&[0.0; EMBEDDING_DIM]).is_none());
}

#[test]
fn similarity_recovers_a_known_transform_exactly() {
    // Template points rotated by 20 degrees, scaled by 3 and shifted: the estimate maps them back onto the template.
    let (c, s) = (20f32.to_radians().cos(), 20f32.to_radians().sin());
    let src = TEMPLATE.map(|[x, y]| [3.0 * (c * x - s * y) + 200.0, 3.0 * (s * x + c * y) + 50.0]);
    let t = Similarity::estimate(&src, &TEMPLATE).unwrap();
    assert!((t.scale() - 1.0 / 3.0).abs() < 1e-5);
    for (p, q) in src.iter().zip(&TEMPLATE) {
        let m = t.apply(*p);
        assert!(
            (m[0] - q[0]).abs() < 1e-3 && (m[1] - q[1]).abs() < 1e-3,
            "{m:?} {q:?}"
        );
    }
    assert!(Similarity::estimate(&[[5.0, 5.0]; 5], &TEMPLATE).is_none());
}

#[test]
fn warp_with_the_identity_copies_pixels_and_blacks_out_the_outside() {
    let photo = RgbImage::from_fn(100, 100, |x, y| Rgb([x as u8, y as u8, 7]));
    let t = Similarity::estimate(&TEMPLATE, &TEMPLATE).unwrap();
    let crop = warp(&photo, &t, 1);
    assert_eq!(crop.0[10 * CROP + 20], [20.0, 10.0, 7.0]);
    assert_eq!(crop.0[50 * CROP + 99], [99.0, 50.0, 7.0]);
    assert_eq!(crop.0[50 * CROP + 105], [0.0, 0.0, 0.0]);
}

#[test]
fn antialiased_shrinking_averages_fine_detail_away() {
    // A 1-pixel checkerboard shrunk 4x: point sampling picks one phase (0 or 255), supersampling averages to grey.
    let photo = RgbImage::from_fn(600, 600, |x, y| {
        if (x + y) % 2 == 0 {
            Rgb([255; 3])
        } else {
            Rgb([0; 3])
        }
    });
    let big = TEMPLATE.map(|[x, y]| [4.0 * x + 40.0, 4.0 * y + 40.0]);
    let sharp = align(&photo, &big, false).unwrap().grey();
    let smooth = align(&photo, &big, true).unwrap().grey();
    let spread = |v: &[f32]| v.iter().map(|p| (p - 127.5).abs()).sum::<f32>() / v.len() as f32;
    assert!(spread(&sharp) > 100.0, "{}", spread(&sharp));
    assert!(spread(&smooth) < 10.0, "{}", spread(&smooth));
}

#[test]
fn antialiased_shrinking_keeps_the_geometry() {
    // On a smooth ramp, block means and point samples agree: the shrunk path must land every crop pixel on the
    // same photo point as the direct warp (an off-by-half-a-block error would show as a constant offset). Scales
    // 2.3x, 3x and 4.7x, rotated, exercise whole and fractional remainders.
    let photo = RgbImage::from_fn(900, 900, |x, y| {
        Rgb([(x / 4) as u8, (y / 4) as u8, ((x + y) / 8) as u8])
    });
    for (scale, angle) in [(2.3f32, 0.1f32), (3.0, -0.2), (4.7, 0.05)] {
        let (c, s) = (angle.cos(), angle.sin());
        let marks = TEMPLATE.map(|[x, y]| {
            let (x, y) = (x - 56.0, y - 56.0);
            [
                scale * (c * x - s * y) + 450.0,
                scale * (s * x + c * y) + 420.0,
            ]
        });
        let direct = align(&photo, &marks, false).unwrap();
        let shrunk = align(&photo, &marks, true).unwrap();
        let worst = direct
            .0
            .iter()
            .zip(&shrunk.0)
            .flat_map(|(a, b)| a.iter().zip(b).map(|(p, q)| (p - q).abs()))
            .fold(0.0f32, f32::max);
        assert!(worst < 1.5, "scale {scale}: worst difference {worst}");
    }
}

/// A crop of random texture, box-blurred `passes` times.
fn texture_crop(passes: usize) -> Crop {
    let mut rng = StdRng::seed_from_u64(3);
    let mut g: Vec<f32> = (0..CROP * CROP)
        .map(|_| rng.random_range(0.0..255.0))
        .collect();
    for _ in 0..passes {
        let src = g.clone();
        for y in 1..CROP - 1 {
            for x in 1..CROP - 1 {
                let mut s = 0.0;
                for dy in 0..3 {
                    for dx in 0..3 {
                        s += src[(y + dy - 1) * CROP + x + dx - 1];
                    }
                }
                g[y * CROP + x] = s / 9.0;
            }
        }
    }
    Crop(g.into_iter().map(|v| [v; 3]).collect())
}

#[test]
fn blur_effect_grows_with_blur_and_ignores_contrast() {
    let b: Vec<f32> = [0, 1, 3, 8]
        .iter()
        .map(|&p| blur_effect(&texture_crop(p)))
        .collect();
    assert!(b.windows(2).all(|w| w[0] < w[1]), "{b:?}");
    assert!(b[0] < 0.2 && b[3] > 0.4, "{b:?}");
    let low_contrast = Crop(
        texture_crop(1)
            .0
            .iter()
            .map(|p| p.map(|v| 100.0 + 0.2 * v))
            .collect(),
    );
    assert!((blur_effect(&low_contrast) - b[1]).abs() < 1e-3);
    assert_eq!(blur_effect(&Crop(vec![[80.0; 3]; CROP * CROP])), 1.0);
}

#[test]
fn index_search_matches_brute_force_and_groups_subjects() {
    let mut rng = StdRng::seed_from_u64(4);
    let mut entries = Vec::new();
    for s in 0..300 {
        entries.push((format!("s{s}"), random_embedding(&mut rng)));
    }
    let probe = near(&entries[17].1, 0.6, &mut rng);
    // Subject s17 also gets a second, weaker entry: it must still appear once, with its best score.
    entries.push(("s17".into(), near(&entries[17].1, 0.2, &mut rng)));
    let index = FaceIndex::build(entries.clone());
    assert_eq!((index.len(), index.subjects()), (301, 300));
    let found = index.search(&probe, 5);
    assert_eq!(found.len(), 5);
    assert_eq!(found[0].0, "s17");
    assert!(
        (found[0].1 - probe.cosine(&entries[17].1)).abs() < 0.01,
        "{found:?}"
    );
    assert_eq!(found.iter().filter(|(id, _)| id == "s17").count(), 1);
    let mut exact: Vec<(String, f32)> = entries[..300]
        .iter()
        .map(|(id, e)| (id.clone(), probe.cosine(e)))
        .collect();
    exact.sort_by(|a, b| b.1.total_cmp(&a.1));
    for ((id, score), (eid, escore)) in found.iter().zip(&exact) {
        assert!(
            (score - escore).abs() < 0.01,
            "{id} {score} vs {eid} {escore}"
        );
    }
    assert!(found.windows(2).all(|w| w[0].1 >= w[1].1));
    assert!(index.search(&probe, 0).is_empty());
    assert!(FaceIndex::build(Vec::new()).search(&probe, 3).is_empty());
}

#[test]
fn parallel_search_equals_single_threaded_search() {
    let mut rng = StdRng::seed_from_u64(5);
    let entries: Vec<_> = (0..40_000)
        .map(|i| (format!("s{}", i % 39_000), random_embedding(&mut rng)))
        .collect();
    let probe = near(&entries[123].1, 0.5, &mut rng);
    let one = FaceIndex::build(entries.clone()).with_threads(std::num::NonZeroUsize::MIN);
    let four = FaceIndex::build(entries).with_threads(std::num::NonZeroUsize::new(4).unwrap());
    assert_eq!(one.search(&probe, 10), four.search(&probe, 10));
    assert_eq!(four.search(&probe, 1)[0].0, "s123");
}

#[test]
fn face_calibration_is_monotone_and_inverts() {
    assert!(face_fmr(-0.5) > 0.99 && face_fmr(0.95) < 1e-12);
    let mut last = 1.0;
    for i in -20..=20 {
        let f = face_fmr(i as f32 / 20.0);
        assert!(f <= last && (0.0..=1.0).contains(&f));
        last = f;
    }
    for far in [1e-2, 1e-3, 1e-4, 1e-6] {
        let t = threshold_for_far(far);
        assert!(
            (face_fmr(t) / far - 1.0).abs() < 1e-3,
            "{far} {t} {}",
            face_fmr(t)
        );
        assert!((face_score(t) + 10.0 * far.log10() as f32).abs() < 0.01);
    }
    assert!(
        (FACE_MATCH_THRESHOLD - threshold_for_far(1e-4)).abs() < 0.005,
        "{}",
        threshold_for_far(1e-4)
    );
}

/// The fingerprint side's calibrated score for a false-match rate.
fn db(fmr: f64) -> f32 {
    (-10.0 * fmr.log10()) as f32
}

#[test]
fn fusion_decides_by_false_match_rate() {
    let th = DecisionThresholds::for_gallery(1000, 1e-3, 1e-2);
    assert!((th.hit_fmr - 1e-6).abs() < 1e-18 && (th.review_fmr - 1e-5).abs() < 1e-17);
    let strong = threshold_for_far(1e-8);
    assert_eq!(fuse(Some(strong), None, &th).decision, FaceDecision::Hit);
    assert_eq!(
        fuse(Some(threshold_for_far(0.5)), None, &th).decision,
        FaceDecision::NoHit
    );
    assert_eq!(
        fuse(Some(threshold_for_far(3e-6)), None, &th).decision,
        FaceDecision::Inconclusive
    );
    // Two moderate, agreeing modalities make a hit that neither makes alone.
    assert_eq!(
        fuse(None, Some(db(2e-4)), &th).decision,
        FaceDecision::NoHit
    );
    let both = fuse(Some(threshold_for_far(2e-4)), Some(db(2e-4)), &th);
    assert_eq!(both.decision, FaceDecision::Hit, "{both:?}");
    // Fisher's method for two tests: P = x (1 - ln x) with x = 4e-8.
    let x = 4e-8f64;
    assert!(
        (both.fmr / (x * (1.0 - x.ln())) - 1.0).abs() < 1e-3,
        "{both:?}"
    );
    assert!((both.score - db(both.fmr)).abs() < 1e-3);
    // A strong face and fingerprints that look like a stranger's disagree.
    let d = fuse(Some(strong), Some(db(0.4)), &th);
    assert_eq!(d.decision, FaceDecision::Inconclusive);
    assert!(d.reason.unwrap().contains("disagree"));
    let d = fuse(Some(threshold_for_far(0.3)), Some(db(1e-9)), &th);
    assert!(d.reason.unwrap().contains("fingerprints match"));
    assert_eq!(fuse(None, None, &th).decision, FaceDecision::Inconclusive);
    assert_eq!(
        fuse(None, Some(f32::NAN), &th).decision,
        FaceDecision::NoHit
    );
}
