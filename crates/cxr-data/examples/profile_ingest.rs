//! Where the time goes in CSV ingest and image preprocessing (for tuning; not a benchmark).
//! `cargo run -p cxr-data --example profile_ingest -- LABELS.csv IMAGE.jpg`
use polars::prelude::SerReader;
use std::time::Instant;

fn main() -> Result<(), Box<dyn std::error::Error>> {
    let args: Vec<String> = std::env::args().skip(1).collect();
    if let Some(csv) = args.first() {
        let t = Instant::now();
        let df = polars::prelude::CsvReadOptions::default()
            .with_has_header(true)
            .try_into_reader_with_file_path(Some(csv.into()))?
            .finish()?;
        println!("polars read {:?} ({} rows)", t.elapsed(), df.height());
        let t = Instant::now();
        let table = cxr_data::read_cxr_lt(std::path::Path::new(csv))?;
        println!("read_cxr_lt {:?} ({} rows)", t.elapsed(), table.len());
    }
    if let Some(img) = args.get(1) {
        let bytes = std::fs::read(img)?;
        let t = Instant::now();
        let g = cxr_data::image::decode_gray(&bytes)?;
        println!("decode {:?}", t.elapsed());
        let t = Instant::now();
        let (w, h) = g.dimensions();
        let pad = cxr_data::image::chexzero_pad(g.as_raw(), w, h, 320);
        println!("lanczos pad {:?}", t.elapsed());
        let t = Instant::now();
        let f: Vec<f32> = pad.iter().map(|&v| v as f32).collect();
        let _ =
            cxr_data::image::resample_f32(&f, 320, 320, 224, 224, cxr_data::image::Filter::Bicubic);
        println!("bicubic 224 {:?}", t.elapsed());
    }
    Ok(())
}
