//! What an upload is, by its bytes; and for pictures: decoded within limits, turned upright,
//! stripped of metadata, and a thumbnail. Plain functions on bytes, tested without a server.
//!
//! A picture whose EXIF orientation is "upright" keeps its encoded pixels: only the metadata
//! blocks (EXIF with its GPS position, XMP, IPTC, comments, PNG text) are cut out, so a
//! photo is not re-compressed. One that must be turned is decoded, turned and encoded
//! again (which drops all metadata too). GIFs carry no EXIF and stay as they are (animation
//! included); their first frame makes the thumbnail.
use std::io::Cursor;

use image::{DynamicImage, ImageDecoder, ImageFormat, ImageReader, Limits, metadata::Orientation};

/// Longest side of a thumbnail, in pixels.
pub const THUMB_SIDE: u32 = 320;
/// Widest and tallest picture decoded.
pub const MAX_SIDE: u32 = 16_384;
/// Most memory one decode may take (a 40-megapixel RGBA picture fits).
pub const MAX_DECODE_BYTES: u64 = 192 * 1024 * 1024;

/// The media type the bytes say (`application/octet-stream` when they say nothing known).
pub fn sniff(head: &[u8]) -> &'static str {
    infer::get(head).map_or("application/octet-stream", |t| t.mime_type())
}

/// A decoded picture, ready to store.
#[derive(Debug)]
pub struct Picture {
    /// What to store: the original bytes without their metadata, or re-encoded.
    pub bytes: Vec<u8>,
    /// Pixels, upright.
    pub width: u32,
    pub height: u32,
    /// The thumbnail and its type; `None` when the picture itself is small enough.
    pub thumb: Option<(Vec<u8>, &'static str)>,
}

/// Why a picture was refused.
#[derive(Debug, thiserror::Error)]
pub enum PictureError {
    /// Larger than the limits: not decoded at all.
    #[error(
        "the picture is larger than {MAX_SIDE} pixels a side or {MAX_DECODE_BYTES} bytes decoded"
    )]
    TooLarge,
    /// Damaged, truncated, or not what its first bytes claim.
    #[error("the picture cannot be read: {0}")]
    Unreadable(String),
}

impl From<image::ImageError> for PictureError {
    fn from(err: image::ImageError) -> Self {
        match err {
            image::ImageError::Limits(_) => PictureError::TooLarge,
            other => PictureError::Unreadable(other.to_string()),
        }
    }
}

fn format_of(mime: &str) -> Option<ImageFormat> {
    match mime {
        "image/jpeg" => Some(ImageFormat::Jpeg),
        "image/png" => Some(ImageFormat::Png),
        "image/gif" => Some(ImageFormat::Gif),
        "image/webp" => Some(ImageFormat::WebP),
        _ => None,
    }
}

/// Whether `mime` is a picture type this module decodes.
pub fn is_picture(mime: &str) -> bool {
    format_of(mime).is_some()
}

fn limits() -> Limits {
    let mut limits = Limits::default();
    limits.max_image_width = Some(MAX_SIDE);
    limits.max_image_height = Some(MAX_SIDE);
    limits.max_alloc = Some(MAX_DECODE_BYTES);
    limits
}

/// Decodes `bytes` (of type `mime`, as sniffed) within the limits and prepares what to
/// store. Call from a blocking thread: a large photo takes a fraction of a second.
pub fn process(bytes: Vec<u8>, mime: &str) -> Result<Picture, PictureError> {
    let format = format_of(mime).ok_or_else(|| PictureError::Unreadable(mime.into()))?;
    let mut reader = ImageReader::with_format(Cursor::new(&bytes[..]), format);
    reader.limits(limits());
    let mut decoder = reader.into_decoder()?;
    // The decoders check the sides; the memory is checked here, before a pixel is read
    // (the PNG decoder would allocate first and fail on the missing data later).
    let (w, h) = decoder.dimensions();
    if w > MAX_SIDE || h > MAX_SIDE || decoder.total_bytes() > MAX_DECODE_BYTES {
        return Err(PictureError::TooLarge);
    }
    let orientation = if format == ImageFormat::Gif {
        Orientation::NoTransforms
    } else {
        decoder.orientation().unwrap_or(Orientation::NoTransforms)
    };
    let mut picture = DynamicImage::from_decoder(decoder)?;
    let stored = if orientation == Orientation::NoTransforms {
        match format {
            ImageFormat::Jpeg => strip_jpeg(&bytes),
            ImageFormat::Png => strip_png(&bytes),
            ImageFormat::WebP => strip_webp(&bytes),
            _ => Some(bytes),
        }
    } else {
        None
    };
    let stored = match stored {
        Some(stored) => stored,
        None => {
            picture.apply_orientation(orientation);
            encode(&picture, format)?
        }
    };
    let (width, height) = (picture.width(), picture.height());
    let thumb = if width.max(height) > THUMB_SIDE {
        let small = picture.thumbnail(THUMB_SIDE, THUMB_SIDE);
        Some(if small.color().has_alpha() {
            (encode(&small, ImageFormat::Png)?, "image/png")
        } else {
            (encode(&small, ImageFormat::Jpeg)?, "image/jpeg")
        })
    } else {
        None
    };
    Ok(Picture {
        bytes: stored,
        width,
        height,
        thumb,
    })
}

/// Encodes a picture (JPEG at quality 85 without alpha; WebP lossless, the only WebP the
/// `image` crate writes).
fn encode(picture: &DynamicImage, format: ImageFormat) -> Result<Vec<u8>, PictureError> {
    let mut out = Cursor::new(Vec::new());
    match format {
        ImageFormat::Jpeg => {
            let encoder = image::codecs::jpeg::JpegEncoder::new_with_quality(&mut out, 85);
            DynamicImage::ImageRgb8(picture.to_rgb8()).write_with_encoder(encoder)?;
        }
        ImageFormat::WebP => {
            let encoder = image::codecs::webp::WebPEncoder::new_lossless(&mut out);
            DynamicImage::ImageRgba8(picture.to_rgba8()).write_with_encoder(encoder)?;
        }
        other => picture.write_to(&mut out, other)?,
    }
    Ok(out.into_inner())
}

/// A JPEG without its APP1 (EXIF, XMP), APP13 (IPTC) and comment segments; `None` when
/// the segment structure is not what it should be.
pub fn strip_jpeg(bytes: &[u8]) -> Option<Vec<u8>> {
    if bytes.get(..2)? != [0xFF, 0xD8] {
        return None;
    }
    let mut out = Vec::with_capacity(bytes.len());
    out.extend_from_slice(&bytes[..2]);
    let mut i = 2;
    loop {
        if *bytes.get(i)? != 0xFF {
            return None;
        }
        // Fill bytes before a marker.
        while *bytes.get(i + 1)? == 0xFF {
            i += 1;
        }
        let marker = *bytes.get(i + 1)?;
        if marker == 0xDA || marker == 0xD9 {
            // Start of scan (or an image that ends here): the rest is image data.
            out.extend_from_slice(&bytes[i..]);
            return Some(out);
        }
        if (0xD0..=0xD7).contains(&marker) || marker == 0x01 {
            out.extend_from_slice(&bytes[i..i + 2]);
            i += 2;
            continue;
        }
        let len = usize::from(u16::from_be_bytes([*bytes.get(i + 2)?, *bytes.get(i + 3)?]));
        if len < 2 {
            return None;
        }
        let end = i.checked_add(2 + len)?;
        let segment = bytes.get(i..end)?;
        if !matches!(marker, 0xE1 | 0xED | 0xFE) {
            out.extend_from_slice(segment);
        }
        i = end;
    }
}

/// A PNG without its `eXIf`, text and time chunks; `None` when the chunk structure is not
/// what it should be.
pub fn strip_png(bytes: &[u8]) -> Option<Vec<u8>> {
    const SIGNATURE: [u8; 8] = [0x89, b'P', b'N', b'G', 0x0D, 0x0A, 0x1A, 0x0A];
    if bytes.get(..8)? != SIGNATURE {
        return None;
    }
    let mut out = Vec::with_capacity(bytes.len());
    out.extend_from_slice(&SIGNATURE);
    let mut i = 8;
    while i < bytes.len() {
        let len =
            usize::try_from(u32::from_be_bytes(bytes.get(i..i + 4)?.try_into().ok()?)).ok()?;
        let kind = bytes.get(i + 4..i + 8)?;
        let end = i.checked_add(12)?.checked_add(len)?;
        let chunk = bytes.get(i..end)?;
        if !matches!(kind, b"eXIf" | b"tEXt" | b"zTXt" | b"iTXt" | b"tIME") {
            out.extend_from_slice(chunk);
        }
        i = end;
        if kind == b"IEND" {
            break;
        }
    }
    Some(out)
}

/// A WebP without its `EXIF` and `XMP ` chunks (and the flags announcing them); `None`
/// when the RIFF structure is not what it should be.
pub fn strip_webp(bytes: &[u8]) -> Option<Vec<u8>> {
    if bytes.get(..4)? != b"RIFF" || bytes.get(8..12)? != b"WEBP" {
        return None;
    }
    let mut out = Vec::with_capacity(bytes.len());
    out.extend_from_slice(&bytes[..12]);
    let mut i = 12;
    while i + 8 <= bytes.len() {
        let kind = bytes.get(i..i + 4)?;
        let len = usize::try_from(u32::from_le_bytes(
            bytes.get(i + 4..i + 8)?.try_into().ok()?,
        ))
        .ok()?;
        let end = i
            .checked_add(8)?
            .checked_add(len + (len & 1))?
            .min(bytes.len());
        let chunk = bytes.get(i..end)?;
        match kind {
            b"EXIF" | b"XMP " => {}
            b"VP8X" => {
                let start = out.len();
                out.extend_from_slice(chunk);
                // Flags byte: clear "has EXIF" (0x08) and "has XMP" (0x04).
                if let Some(flags) = out.get_mut(start + 8) {
                    *flags &= !0x0C;
                }
            }
            _ => out.extend_from_slice(chunk),
        }
        i = end;
    }
    let riff_len = u32::try_from(out.len() - 8).ok()?;
    out[4..8].copy_from_slice(&riff_len.to_le_bytes());
    Some(out)
}

/// Pictures with known metadata, for the tests and the benchmark.
#[doc(hidden)]
pub mod samples {
    use std::io::Cursor;

    use image::{DynamicImage, ImageFormat, Rgb, RgbImage};

    /// A well-formed PNG (checksums right) whose header claims `w` × `h` RGBA pixels while
    /// its data is one pixel: a decompression bomb's shape without its size.
    pub fn png_claiming(w: u32, h: u32) -> Vec<u8> {
        let mut png = Cursor::new(Vec::new());
        DynamicImage::ImageRgba8(image::RgbaImage::new(1, 1))
            .write_to(&mut png, ImageFormat::Png)
            .expect("encode");
        let mut png = png.into_inner();
        png[16..20].copy_from_slice(&w.to_be_bytes());
        png[20..24].copy_from_slice(&h.to_be_bytes());
        // The IHDR chunk's CRC covers its type and data (bytes 12..29).
        let crc = crc32(&png[12..29]);
        png[29..33].copy_from_slice(&crc.to_be_bytes());
        png
    }

    fn crc32(bytes: &[u8]) -> u32 {
        let mut crc = 0xFFFF_FFFFu32;
        for &b in bytes {
            crc ^= u32::from(b);
            for _ in 0..8 {
                crc = if crc & 1 == 1 {
                    (crc >> 1) ^ 0xEDB8_8320
                } else {
                    crc >> 1
                };
            }
        }
        !crc
    }

    /// A black `w` × `h` PNG with nothing but its pixels.
    pub fn plain_png(w: u32, h: u32) -> Vec<u8> {
        let mut png = Cursor::new(Vec::new());
        DynamicImage::ImageRgb8(RgbImage::new(w, h))
            .write_to(&mut png, ImageFormat::Png)
            .expect("encode");
        png.into_inner()
    }

    /// The head of an extended WebP whose EXIF chunk says "GPSSECRET".
    pub fn webp_with_exif() -> Vec<u8> {
        let mut webp = b"RIFF\0\0\0\0WEBPVP8X".to_vec();
        webp.extend_from_slice(&10u32.to_le_bytes());
        webp.extend_from_slice(&[0x08, 0, 0, 0, 0, 0, 0, 0, 0, 0]);
        webp.extend_from_slice(b"EXIF");
        webp.extend_from_slice(&9u32.to_le_bytes());
        webp.extend_from_slice(b"GPSSECRET\0");
        webp
    }

    /// A JPEG of `w`×`h` with an EXIF block holding `orientation` and a GPS position.
    pub fn jpeg_with_exif(w: u32, h: u32, orientation: u16) -> Vec<u8> {
        let img = RgbImage::from_fn(w, h, |x, _| {
            if x < w / 2 {
                Rgb([250, 0, 0])
            } else {
                Rgb([0, 0, 250])
            }
        });
        let mut plain = Cursor::new(Vec::new());
        DynamicImage::ImageRgb8(img)
            .write_to(&mut plain, ImageFormat::Jpeg)
            .expect("encode");
        let plain = plain.into_inner();
        let exif = exif_block(orientation);
        let mut app1 = vec![0xFF, 0xE1];
        app1.extend_from_slice(&u16::try_from(exif.len() + 2).expect("small").to_be_bytes());
        app1.extend_from_slice(&exif);
        let mut out = plain[..2].to_vec();
        out.extend_from_slice(&app1);
        out.extend_from_slice(&plain[2..]);
        out
    }

    /// "Exif\0\0" + a little-endian TIFF: IFD0 with Orientation and a GPS IFD pointer; the GPS
    /// IFD with GPSLatitudeRef "N" and a marker string "GPSSECRET" in GPSMapDatum.
    pub fn exif_block(orientation: u16) -> Vec<u8> {
        let mut t = Vec::new();
        t.extend_from_slice(b"II*\0");
        t.extend_from_slice(&8u32.to_le_bytes());
        // IFD0 at 8: 2 entries.
        t.extend_from_slice(&2u16.to_le_bytes());
        // Orientation (0x0112), SHORT, 1, value.
        t.extend_from_slice(&0x0112u16.to_le_bytes());
        t.extend_from_slice(&3u16.to_le_bytes());
        t.extend_from_slice(&1u32.to_le_bytes());
        t.extend_from_slice(&orientation.to_le_bytes());
        t.extend_from_slice(&[0, 0]);
        // GPSInfo (0x8825), LONG, 1, offset of the GPS IFD.
        let gps_at = 8 + 2 + 2 * 12 + 4;
        t.extend_from_slice(&0x8825u16.to_le_bytes());
        t.extend_from_slice(&4u16.to_le_bytes());
        t.extend_from_slice(&1u32.to_le_bytes());
        t.extend_from_slice(&u32::try_from(gps_at).expect("small").to_le_bytes());
        t.extend_from_slice(&0u32.to_le_bytes());
        // GPS IFD: 2 entries.
        t.extend_from_slice(&2u16.to_le_bytes());
        t.extend_from_slice(&1u16.to_le_bytes()); // GPSLatitudeRef
        t.extend_from_slice(&2u16.to_le_bytes()); // ASCII
        t.extend_from_slice(&2u32.to_le_bytes());
        t.extend_from_slice(b"N\0\0\0");
        let datum_at = gps_at + 2 + 2 * 12 + 4;
        t.extend_from_slice(&0x0012u16.to_le_bytes()); // GPSMapDatum
        t.extend_from_slice(&2u16.to_le_bytes());
        t.extend_from_slice(&10u32.to_le_bytes());
        t.extend_from_slice(&u32::try_from(datum_at).expect("small").to_le_bytes());
        t.extend_from_slice(&0u32.to_le_bytes());
        t.extend_from_slice(b"GPSSECRET\0");
        let mut block = b"Exif\0\0".to_vec();
        block.extend_from_slice(&t);
        block
    }
}

#[cfg(test)]
mod tests {
    use super::samples::{exif_block, jpeg_with_exif, png_claiming};
    use super::*;
    use image::{Rgb, RgbImage};

    fn contains(haystack: &[u8], needle: &[u8]) -> bool {
        haystack.windows(needle.len()).any(|w| w == needle)
    }

    #[test]
    fn types_come_from_the_bytes() {
        let jpeg = jpeg_with_exif(8, 8, 1);
        assert_eq!(sniff(&jpeg), "image/jpeg");
        assert_eq!(sniff(b"<!DOCTYPE html><html><script>"), "text/html");
        assert_eq!(sniff(b"%PDF-1.7\n"), "application/pdf");
        assert_eq!(sniff(b"just some words"), "application/octet-stream");
    }

    #[test]
    fn an_upright_photo_keeps_its_pixels_and_loses_its_exif() {
        let jpeg = jpeg_with_exif(400, 200, 1);
        assert!(contains(&jpeg, b"GPSSECRET"));
        let p = process(jpeg.clone(), "image/jpeg").expect("process");
        assert!(!contains(&p.bytes, b"GPSSECRET"));
        assert!(!contains(&p.bytes, b"Exif"));
        assert_eq!((p.width, p.height), (400, 200));
        // Only the EXIF segment went: the rest is byte for byte the same.
        assert_eq!(p.bytes.len(), jpeg.len() - exif_block(1).len() - 4);
        let (thumb, mime) = p.thumb.expect("a thumbnail");
        assert_eq!(mime, "image/jpeg");
        let t = image::load_from_memory(&thumb).expect("thumb decodes");
        assert_eq!((t.width(), t.height()), (320, 160));
    }

    #[test]
    fn a_turned_photo_is_stored_upright() {
        // Orientation 6: the camera was turned; shown rotated 90° clockwise.
        let jpeg = jpeg_with_exif(40, 20, 6);
        let p = process(jpeg, "image/jpeg").expect("process");
        assert_eq!((p.width, p.height), (20, 40));
        assert!(!contains(&p.bytes, b"GPSSECRET"));
        let stored = image::load_from_memory(&p.bytes)
            .expect("decodes")
            .to_rgb8();
        assert_eq!((stored.width(), stored.height()), (20, 40));
        // Left half red became the top half.
        let top = stored.get_pixel(10, 5);
        let bottom = stored.get_pixel(10, 35);
        assert!(top[0] > 200 && top[2] < 60, "top {top:?}");
        assert!(bottom[2] > 200 && bottom[0] < 60, "bottom {bottom:?}");
        assert!(p.thumb.is_none(), "small pictures are their own thumbnail");
    }

    #[test]
    fn a_decompression_bomb_is_refused_before_decoding() {
        // A valid PNG header claiming 20,000 × 20,000 pixels (1.6 GB decoded).
        assert!(matches!(
            process(png_claiming(20_000, 20_000), "image/png"),
            Err(PictureError::TooLarge)
        ));
        // Within the sides but past the memory allowance: 16,000 × 16,000 RGBA.
        assert!(matches!(
            process(png_claiming(16_000, 16_000), "image/png"),
            Err(PictureError::TooLarge)
        ));
    }

    #[test]
    fn a_truncated_picture_is_refused() {
        let img = RgbImage::from_fn(64, 64, |x, y| Rgb([x as u8, y as u8, 7]));
        let mut png = Cursor::new(Vec::new());
        DynamicImage::ImageRgb8(img)
            .write_to(&mut png, ImageFormat::Png)
            .expect("encode");
        let png = png.into_inner();
        let cut = png[..png.len() / 2].to_vec();
        assert!(matches!(
            process(cut, "image/png"),
            Err(PictureError::Unreadable(_))
        ));
    }

    #[test]
    fn png_text_and_webp_exif_are_removed() {
        let png = samples::plain_png(4, 4);
        // Insert a tEXt chunk after IHDR (8 + 25 bytes).
        let data = b"Comment\0GPSSECRET";
        let mut chunk = u32::try_from(data.len())
            .expect("small")
            .to_be_bytes()
            .to_vec();
        chunk.extend_from_slice(b"tEXt");
        chunk.extend_from_slice(data);
        chunk.extend_from_slice(&[0, 0, 0, 0]);
        let mut with_text = png[..33].to_vec();
        with_text.extend_from_slice(&chunk);
        with_text.extend_from_slice(&png[33..]);
        let stripped = strip_png(&with_text).expect("strip");
        assert_eq!(stripped, png);

        let webp = samples::webp_with_exif();
        let stripped = strip_webp(&webp).expect("strip");
        assert!(!contains(&stripped, b"GPSSECRET"));
        assert_eq!(stripped[20], 0, "the EXIF flag is cleared");
        assert_eq!(
            u32::from_le_bytes(stripped[4..8].try_into().expect("4")) as usize,
            stripped.len() - 8
        );
    }

    /// xorshift64*: the same mangled inputs every run.
    struct Rng(u64);
    impl Rng {
        fn next(&mut self) -> u64 {
            self.0 ^= self.0 >> 12;
            self.0 ^= self.0 << 25;
            self.0 ^= self.0 >> 27;
            self.0.wrapping_mul(0x2545_f491_4f6c_dd1d)
        }
        fn below(&mut self, n: usize) -> usize {
            (self.next() % n.max(1) as u64) as usize
        }
    }

    /// One random way a file gets broken: cut short, a byte flipped, a length field (four
    /// bytes) set to 0 or to the largest value, a piece repeated.
    fn mangle(rng: &mut Rng, good: &[u8]) -> Vec<u8> {
        let mut bad = good.to_vec();
        for _ in 0..=rng.below(3) {
            let at = rng.below(bad.len());
            match rng.below(4) {
                0 => bad.truncate(at),
                1 => {
                    if let Some(b) = bad.get_mut(at) {
                        *b ^= 1 << rng.below(8);
                    }
                }
                2 => {
                    let fill = if rng.below(2) == 0 { 0 } else { 0xff };
                    for b in bad.iter_mut().skip(at).take(4) {
                        *b = fill;
                    }
                }
                _ => {
                    let end = (at + rng.below(64)).min(bad.len());
                    let piece = bad[at..end].to_vec();
                    bad.splice(at..at, piece);
                }
            }
        }
        bad
    }

    #[test]
    fn mangled_pictures_never_panic_the_strippers_or_the_decoder() {
        let seeds = [
            ("image/jpeg", samples::jpeg_with_exif(32, 24, 6)),
            ("image/png", samples::plain_png(24, 16)),
            ("image/webp", samples::webp_with_exif()),
        ];
        let mut rng = Rng(0x9e37_79b9_7f4a_7c15);
        for (mime, good) in &seeds {
            for round in 0..2000 {
                let bad = mangle(&mut rng, good);
                // Every stripper meets every kind of input; none may panic, and what
                // comes out is never longer than what went in plus nothing made up.
                for out in [strip_jpeg(&bad), strip_png(&bad), strip_webp(&bad)]
                    .into_iter()
                    .flatten()
                {
                    assert!(out.len() <= bad.len(), "{mime} round {round}");
                }
                let _ = sniff(&bad);
                if round % 10 == 0 {
                    let _ = process(bad, mime);
                }
            }
        }
    }
}
