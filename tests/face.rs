//! Face models on real photos: detection, landmarks, alignment and embeddings give dlib's
//! same-person separation.

use vigil::analysis::face::{FaceModels, FaceObservation, distance};
use vigil::ingest::{self, IngestConfig, Item, MediaInput, Sampling};
use vigil::media::VideoFrame;

fn photo(name: &str) -> VideoFrame {
    let path = std::path::Path::new(env!("CARGO_MANIFEST_DIR"))
        .join("testdata/faces")
        .join(name);
    let mut frame = None;
    ingest::run(
        &MediaInput::File(path),
        &IngestConfig {
            sampling: Sampling::All,
            ..IngestConfig::default()
        },
        |item| {
            if let Item::Video(f) = item {
                frame.get_or_insert(f);
            }
            Ok(())
        },
    )
    .unwrap();
    frame.expect("the photo decodes to a frame")
}

fn observe(models: &mut FaceModels, name: &str) -> FaceObservation {
    let f = photo(name);
    models.observe(&f, 128.0).unwrap()
}

#[test]
fn one_face_per_portrait_and_dlib_separation_holds() {
    let mut m = FaceModels::load().unwrap();
    let names = [
        "obama.jpg",
        "obama2.jpg",
        "biden.jpg",
        "grace_hopper.jpg",
        "astronaut.png",
    ];
    let obs: Vec<FaceObservation> = names.iter().map(|n| observe(&mut m, n)).collect();
    for (n, o) in names.iter().zip(&obs) {
        eprintln!(
            "{n}: {} faces, scores {:?}, mouth {:?}",
            o.faces.len(),
            o.faces.iter().map(|f| f.score).collect::<Vec<_>>(),
            o.mouth_open
        );
        assert_eq!(o.faces.len(), 1, "{n}");
        assert!(o.embedding.is_some(), "{n}");
    }
    let e = |i: usize| obs[i].embedding.unwrap();
    for i in 0..names.len() {
        for j in i + 1..names.len() {
            eprintln!(
                "{} vs {}: {:.3}",
                names[i],
                names[j],
                distance(&e(i), &e(j))
            );
        }
    }
    let same = distance(&e(0), &e(1));
    assert!(same < 0.6, "two photos of the same man: {same}");
    for j in 2..names.len() {
        let d = distance(&e(0), &e(j));
        assert!(d > 0.6, "obama vs {}: {d}", names[j]);
    }
}
