//! Where the time goes in CSV ingest and image preprocessing (for tuning; not a benchmark).
//! `cargo run --release -p cxr-data --example profile_ingest -- LABELS.csv IMAGE.jpg`
use std::time::Instant;

/// Best of 5 runs of `f`, in milliseconds.
fn ms<T>(mut f: impl FnMut() -> T) -> f64 {
    (0..5)
        .map(|_| {
            let t = Instant::now();
            std::hint::black_box(f());
            t.elapsed().as_secs_f64() * 1e3
        })
        .fold(f64::INFINITY, f64::min)
}

fn main() -> Result<(), Box<dyn std::error::Error>> {
    let args: Vec<String> = std::env::args().skip(1).collect();
    if let Some(csv) = args.first().filter(|s| !s.is_empty()) {
        let csv = std::path::Path::new(csv);
        if std::env::var_os("FAST_ONLY").is_some() {
            // For `perf record`: the fast reader alone.
            for _ in 0..10 {
                std::hint::black_box(cxr_data::read_cxr_lt(csv)?);
            }
            return Ok(());
        }
        println!("read bytes {:.1} ms", ms(|| std::fs::read(csv).unwrap()));
        println!(
            "read_cxr_lt (fast) {:.1} ms",
            ms(|| cxr_data::read_cxr_lt(csv).unwrap())
        );
        let t = cxr_data::read_cxr_lt(csv)?;
        println!(
            "  of which dropping the table {:.1} ms",
            ms(|| drop(t.clone())) - ms(|| t.clone())
        );
        println!(
            "read_cxr_lt_with_polars {:.1} ms",
            ms(|| cxr_data::read_cxr_lt_with_polars(csv).unwrap())
        );
    }
    if let Some(img) = args.get(1) {
        let bytes = std::fs::read(img)?;
        println!(
            "decode {:.1} ms",
            ms(|| cxr_data::image::decode_gray(&bytes).unwrap())
        );
        {
            use zune_jpeg::zune_core::{bytestream::ZCursor, colorspace::ColorSpace, options};
            let opts = options::DecoderOptions::default()
                .set_strict_mode(false)
                .jpeg_set_out_colorspace(ColorSpace::Luma);
            let mut buf = vec![0u8; 2500 * 3000];
            println!(
                "zune decode_into a reused buffer {:.1} ms",
                ms(|| {
                    let mut d =
                        zune_jpeg::JpegDecoder::new_with_options(ZCursor::new(&bytes), opts);
                    d.decode_into(&mut buf).unwrap();
                })
            );
        }
        let g = cxr_data::image::decode_gray(&bytes)?;
        let (w, h) = g.dimensions();
        println!(
            "lanczos pad {:.1} ms",
            ms(|| cxr_data::image::chexzero_pad(g.as_raw(), w, h, 320))
        );
        let pad = cxr_data::image::chexzero_pad(g.as_raw(), w, h, 320);
        let p = cxr_data::image::Preprocess::chexzero(224);
        println!(
            "preprocess_u8 {:.1} ms (bicubic 224 {:.1} ms)",
            ms(|| cxr_data::image::preprocess_u8(&g, &p)),
            ms(|| cxr_data::image::preprocess_u8(
                &image::GrayImage::from_raw(320, 320, pad.clone()).unwrap(),
                &p
            ))
        );
    }
    Ok(())
}
