//! What a large photo costs the server: decode, check, strip and thumbnail a 12-megapixel
//! JPEG (4000 × 3000, camera-like detail), five times; the time of each and the process's
//! peak memory. Run by `scripts/bench upload`.
use std::io::Cursor;
use std::time::Instant;

use image::{DynamicImage, ImageFormat, Rgb, RgbImage};
use server::media::picture;

fn peak_kib() -> u64 {
    std::fs::read_to_string("/proc/self/status")
        .ok()
        .and_then(|s| {
            s.lines()
                .find(|l| l.starts_with("VmHWM"))
                .and_then(|l| l.split_whitespace().nth(1)?.parse().ok())
        })
        .unwrap_or(0)
}

fn main() {
    // Smooth gradients with fine noise: compresses like a photo, not like a flat image.
    let mut seed = 0x2545_f491u32;
    let img = RgbImage::from_fn(4000, 3000, |x, y| {
        seed ^= seed << 13;
        seed ^= seed >> 17;
        seed ^= seed << 5;
        let n = (seed & 31) as u8;
        Rgb([
            ((x / 16) as u8).wrapping_add(n),
            ((y / 12) as u8).wrapping_add(n / 2),
            (((x + y) / 28) as u8).wrapping_add(n / 3),
        ])
    });
    let mut jpeg = Cursor::new(Vec::new());
    DynamicImage::ImageRgb8(img)
        .write_to(&mut jpeg, ImageFormat::Jpeg)
        .expect("encode");
    let jpeg = jpeg.into_inner();
    // Start the peak from here: the made-up photo's pixels are gone, its file remains.
    let _ = std::fs::write("/proc/self/clear_refs", "5");
    let before = peak_kib();
    let mut times = Vec::new();
    for _ in 0..5 {
        let start = Instant::now();
        let p = picture::process(jpeg.clone(), "image/jpeg").expect("process");
        times.push(start.elapsed().as_secs_f64() * 1000.0);
        assert_eq!((p.width, p.height), (4000, 3000));
        assert!(p.thumb.is_some());
    }
    times.sort_by(f64::total_cmp);
    println!(
        "12-megapixel JPEG ({:.1} MB): decode + strip + 320 px thumbnail {:.0} ms median ({:.0}–{:.0}), peak memory {} MiB (+{} MiB over the process holding the file)",
        jpeg.len() as f64 / 1e6,
        times[2],
        times[0],
        times[4],
        peak_kib() / 1024,
        peak_kib().saturating_sub(before) / 1024,
    );
}
