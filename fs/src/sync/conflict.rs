//! Conflict copies: where a version the hub refused is kept.
//!
//! `NAME.conflict-DEVICE-YYYYMMDD-HHMMSS.EXT`: the extension stays last so the
//! copy still opens in the right program.
use std::time::SystemTime;

pub fn conflict_name(name: &str, device: &str, at: SystemTime) -> String {
    let secs = at.duration_since(SystemTime::UNIX_EPOCH).map(|d| d.as_secs()).unwrap_or(0) as i64;
    let (y, mo, d) = civil_from_days(secs.div_euclid(86_400));
    let sod = secs.rem_euclid(86_400);
    let stamp = format!("{y:04}{mo:02}{d:02}-{:02}{:02}{:02}", sod / 3600, sod / 60 % 60, sod % 60);
    // A leading dot is a hidden file, not an extension.
    // A very long "extension" is not one: keep it in the stem, where it may be shortened.
    let (stem, ext) = match name.rfind('.') {
        Some(i) if i > 0 && name.len() - i <= 32 => (&name[..i], &name[i..]),
        _ => (name, ""),
    };
    let device: String = device.chars().filter(|c| c.is_ascii_alphanumeric() || *c == '-' || *c == '_').collect();
    let device = if device.is_empty() { "device".to_string() } else { device };
    let suffix = format!(".conflict-{device}-{stamp}{ext}");
    // Shorten the stem, never the marker: the name must stay a valid component.
    let room = ssync_common::path::MAX_COMPONENT_BYTES.saturating_sub(suffix.len());
    let mut cut = stem.len().min(room);
    while !stem.is_char_boundary(cut) {
        cut -= 1;
    }
    format!("{}{suffix}", &stem[..cut])
}

/// The name a conflict copy was made from (`a.conflict-pc-20261122-100509-2.txt` -> `a.txt`).
pub fn original_name(name: &str) -> &str {
    match name.find(".conflict-") {
        Some(i) if i > 0 => &name[..i],
        _ => name,
    }
}

/// Extension of the original (kept last in every copy's name).
pub fn original_ext(name: &str) -> &str {
    let Some(i) = name.find(".conflict-") else { return "" };
    let marker = &name[i + ".conflict-".len()..];
    // DEVICE-YYYYMMDD-HHMMSS[-N] then the extension, if any.
    marker.find('.').map_or("", |j| &marker[j..])
}

/// The `n`th conflict name for `name` (n = 1 is the plain one, then `-2`, `-3`...).
pub fn numbered_conflict_name(name: &str, device: &str, at: SystemTime, n: u32) -> String {
    let base = format!("{}{}", original_name(name), original_ext(name));
    let plain = conflict_name(&base, device, at);
    if n <= 1 {
        return plain;
    }
    // Insert -N after the timestamp, before the extension.
    let ext_len = original_ext(&base).len().min(plain.len());
    let ext_len = if original_ext(&base).is_empty() {
        match base.rfind('.') {
            Some(i) if i > 0 && base.len() - i <= 32 => base.len() - i,
            _ => 0,
        }
    } else {
        ext_len
    };
    let (head, ext) = plain.split_at(plain.len() - ext_len);
    format!("{head}-{n}{ext}")
}

/// Days since 1970-01-01 to (year, month, day), proleptic Gregorian (H. Hinnant's algorithm).
fn civil_from_days(z: i64) -> (i64, u32, u32) {
    let z = z + 719_468;
    let era = z.div_euclid(146_097);
    let doe = z.rem_euclid(146_097);
    let yoe = (doe - doe / 1460 + doe / 36_524 - doe / 146_096) / 365;
    let doy = doe - (365 * yoe + yoe / 4 - yoe / 100);
    let mp = (5 * doy + 2) / 153;
    let d = (doy - (153 * mp + 2) / 5 + 1) as u32;
    let m = if mp < 10 { mp + 3 } else { mp - 9 } as u32;
    (yoe + era * 400 + i64::from(m <= 2), m, d)
}

#[cfg(test)]
mod tests {
    use super::*;
    use std::time::Duration;

    fn at(secs: u64) -> SystemTime {
        SystemTime::UNIX_EPOCH + Duration::from_secs(secs)
    }

    #[test]
    fn keeps_extension_last() {
        // 2026-11-22T10:05:09Z
        let t = at(1_795_341_909);
        assert_eq!(conflict_name("report.pdf", "laptop", t), "report.conflict-laptop-20261122-100509.pdf");
        assert_eq!(conflict_name("Makefile", "pc", t), "Makefile.conflict-pc-20261122-100509");
        assert_eq!(conflict_name(".bashrc", "pc", t), ".bashrc.conflict-pc-20261122-100509");
        assert_eq!(conflict_name("a.tar.gz", "pc", t), "a.tar.conflict-pc-20261122-100509.gz");
    }

    #[test]
    fn copies_of_copies_do_not_nest() {
        let t = at(1_795_341_909);
        let first = numbered_conflict_name("report.pdf", "pc", t, 1);
        assert_eq!(first, "report.conflict-pc-20261122-100509.pdf");
        assert_eq!(numbered_conflict_name("report.pdf", "pc", t, 3), "report.conflict-pc-20261122-100509-3.pdf");
        assert_eq!(numbered_conflict_name(&first, "pc", t, 2), "report.conflict-pc-20261122-100509-2.pdf");
        assert_eq!(numbered_conflict_name("Makefile", "pc", t, 2), "Makefile.conflict-pc-20261122-100509-2");
    }

    #[test]
    fn sanitises_device_and_stays_a_valid_name() {
        let name = conflict_name(&"x".repeat(250), "my host/../", at(0));
        assert!(name.len() <= 255, "{}", name.len());
        assert!(name.contains(".conflict-myhost-19700101-000000"));
        ssync_common::path::validate_name(&name).unwrap();
        let long_ext = conflict_name(&format!("a.{}", "e".repeat(250)), "pc", at(0));
        ssync_common::path::validate_name(&long_ext).unwrap();
        assert!(long_ext.ends_with(".conflict-pc-19700101-000000"));
    }
}
