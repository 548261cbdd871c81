//! Generate a synthetic dataset: `cargo run -p cxr-data --example synth_demo -- OUT [PATIENTS] [SEED]`.
fn main() -> Result<(), Box<dyn std::error::Error>> {
    let mut args = std::env::args().skip(1);
    let out = args.next().unwrap_or_else(|| "synth-out".into());
    let patients = args.next().map(|s| s.parse()).transpose()?.unwrap_or(400);
    let seed = args.next().map(|s| s.parse()).transpose()?.unwrap_or(0);
    let cfg = cxr_data::synth::SynthConfig {
        patients,
        seed,
        ..Default::default()
    };
    let t = std::time::Instant::now();
    let s = cxr_data::synth::generate(std::path::Path::new(&out), &cfg)?;
    println!(
        "{} images, {} frontal, {} studies in {:.2}s",
        s.images,
        s.frontal_images,
        s.studies,
        t.elapsed().as_secs_f64()
    );
    for (k, c) in cxr_data::classes::CXR_LT_CLASSES.iter().enumerate() {
        println!(
            "{:<28} {:>6} {:>6}",
            c.name, s.class_counts[k], s.frontal_class_counts[k]
        );
    }
    Ok(())
}
