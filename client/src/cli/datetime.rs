//! `--to-datetime` parsing: ISO-8601 as Kafka's tools accept it,
//! `YYYY-MM-DDTHH:mm:SS[.sss][Z|+HH:MM|-HH:MM]`, without a date library.
//! A time without a zone is taken as UTC (Kafka takes the local zone; a
//! command that means the same on every machine is the safer default).

/// Milliseconds since the Unix epoch for `s`.
pub fn parse_datetime_ms(s: &str) -> Result<i64, String> {
    let bad = || format!("'{s}' is not a date-time like 2026-01-01T00:00:00Z");
    let (date, rest) = s.split_once('T').ok_or_else(bad)?;
    let d: Vec<&str> = date.split('-').collect();
    let [y, mo, da] = d[..] else {
        return Err(bad());
    };
    let (time, offset_min) = split_zone(rest).ok_or_else(bad)?;
    let (hms, frac) = time.split_once('.').unwrap_or((time, ""));
    let t: Vec<&str> = hms.split(':').collect();
    let [h, mi, se] = t[..] else {
        return Err(bad());
    };
    let num = |v: &str, lo: i64, hi: i64| {
        let n: i64 = v.parse().map_err(|_| bad())?;
        if (lo..=hi).contains(&n) && !v.is_empty() {
            Ok(n)
        } else {
            Err(bad())
        }
    };
    let (y, mo, da) = (num(y, 1970, 9999)?, num(mo, 1, 12)?, num(da, 1, 31)?);
    let (h, mi, se) = (num(h, 0, 23)?, num(mi, 0, 59)?, num(se, 0, 60)?);
    let ms = match frac.len() {
        0 => 0,
        1..=3 => num(frac, 0, 999)? * 10i64.pow(3 - frac.len() as u32),
        _ => return Err(bad()),
    };
    let days = days_from_civil(y, mo, da);
    let secs = days * 86_400 + h * 3600 + mi * 60 + se - offset_min * 60;
    Ok(secs * 1000 + ms)
}

/// Splits "HH:mm:SS[.sss]" from a trailing zone; the zone as minutes east of UTC.
fn split_zone(rest: &str) -> Option<(&str, i64)> {
    if let Some(t) = rest.strip_suffix('Z') {
        return Some((t, 0));
    }
    let Some(i) = rest.rfind(['+', '-']) else {
        return Some((rest, 0));
    };
    let (time, zone) = rest.split_at(i);
    let sign = if zone.starts_with('-') { -1 } else { 1 };
    let (zh, zm) = zone[1..].split_once(':').unwrap_or((&zone[1..], "00"));
    let (zh, zm): (i64, i64) = (zh.parse().ok()?, zm.parse().ok()?);
    (zh <= 18 && zm < 60).then_some((time, sign * (zh * 60 + zm)))
}

/// Days since 1970-01-01 of a proleptic Gregorian date (Howard Hinnant's algorithm).
fn days_from_civil(y: i64, m: i64, d: i64) -> i64 {
    let y = if m <= 2 { y - 1 } else { y };
    let era = y.div_euclid(400);
    let yoe = y - era * 400;
    let mp = (m + 9) % 12;
    let doy = (153 * mp + 2) / 5 + d - 1;
    let doe = yoe * 365 + yoe / 4 - yoe / 100 + doy;
    era * 146_097 + doe - 719_468
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn parses_kafka_formats() {
        assert_eq!(parse_datetime_ms("1970-01-01T00:00:00Z"), Ok(0));
        assert_eq!(
            parse_datetime_ms("2026-01-01T00:00:00Z"),
            Ok(1_767_225_600_000)
        );
        assert_eq!(
            parse_datetime_ms("2026-01-01T00:00:00.5Z"),
            Ok(1_767_225_600_500)
        );
        assert_eq!(
            parse_datetime_ms("2026-01-01T02:00:00.123+02:00"),
            Ok(1_767_225_600_123)
        );
        assert_eq!(
            parse_datetime_ms("2024-02-29T12:00:00"),
            Ok(1_709_208_000_000)
        );
        assert_eq!(
            parse_datetime_ms("2025-12-31T19:00:00-05:00"),
            Ok(1_767_225_600_000)
        );
    }

    #[test]
    fn rejects_garbage() {
        for s in [
            "",
            "2026-01-01",
            "2026-13-01T00:00:00Z",
            "2026-01-01T25:00:00Z",
            "yesterday",
            "2026-01-01T00:00Z",
        ] {
            assert!(parse_datetime_ms(s).is_err(), "{s}");
        }
    }
}
