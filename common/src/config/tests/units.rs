//! Durations and byte sizes: accepted forms, canonical display, refusals.

use crate::config::{ByteSize, Duration};

fn ms(millis: u64) -> Duration {
    Duration::from_millis(millis)
}

#[test]
fn durations_parse_and_display_canonically() {
    let cases = [
        ("250ms", ms(250), "250ms"),
        ("5s", ms(5_000), "5s"),
        ("1m", ms(60_000), "1m"),
        ("1h", ms(3_600_000), "1h"),
        ("1m30s", ms(90_000), "1m30s"),
        ("90s", ms(90_000), "1m30s"),
        ("1500ms", ms(1_500), "1s500ms"),
        ("0s", Duration::ZERO, "0s"),
        (" 5 s ", ms(5_000), "5s"),
        ("1h2m3s4ms", ms(3_723_004), "1h2m3s4ms"),
    ];
    for (text, want, canonical) in cases {
        assert_eq!(text.parse::<Duration>(), Ok(want), "{text}");
        assert_eq!(want.to_string(), canonical, "{text}");
        assert_eq!(canonical.parse::<Duration>(), Ok(want), "{text} round trip");
    }
    let odd = Duration::from(std::time::Duration::new(7, 1_001));
    assert_eq!(odd.to_string(), "7s1us1ns");
    assert_eq!(odd.to_string().parse::<Duration>(), Ok(odd));
    assert_eq!("3us".parse::<Duration>(), "3µs".parse::<Duration>());
}

#[test]
fn durations_refused_with_reasons() {
    let cases = [
        ("30", "durations need a unit: 250ms, 5s, 1m"),
        ("-1s", "durations cannot be negative"),
        ("5 seconds", "unknown unit `seconds`"),
        (
            "1.5s",
            "fractions are not supported: use a smaller unit (1500ms, not 1.5s)",
        ),
        ("30s1m", "units go from largest to smallest"),
        ("1s1s", "units go from largest to smallest"),
        ("", "expected a number"),
        ("s", "expected a number"),
        ("5s 3", "missing unit after 3"),
        ("99999999999999999999999h", "too large"),
    ];
    for (text, reason) in cases {
        let error = text.parse::<Duration>().map(|d| d.to_string());
        let message = error.err().map(|e| e.to_string()).unwrap_or_default();
        assert!(
            message.starts_with(&format!("invalid duration `{text}`: ")),
            "{text}: {message}"
        );
        assert!(message.contains(reason), "{text}: {message}");
    }
}

#[test]
fn byte_sizes_parse_and_display_canonically() {
    let cases = [
        ("512", 512, "512B"),
        ("512B", 512, "512B"),
        ("0", 0, "0B"),
        ("64KiB", 64 << 10, "64KiB"),
        ("10MiB", 10 << 20, "10MiB"),
        ("1GiB", 1 << 30, "1GiB"),
        ("2TiB", 2 << 40, "2TiB"),
        ("1024KiB", 1 << 20, "1MiB"),
        ("1KB", 1_000, "1KB"),
        ("5MB", 5_000_000, "5MB"),
        ("1GB", 1_000_000_000, "1GB"),
        ("10 MiB", 10 << 20, "10MiB"),
        ("1000", 1_000, "1KB"),
    ];
    for (text, bytes, canonical) in cases {
        assert_eq!(text.parse::<ByteSize>(), Ok(ByteSize::new(bytes)), "{text}");
        assert_eq!(ByteSize::new(bytes).to_string(), canonical, "{text}");
        assert_eq!(
            canonical.parse::<ByteSize>().map(ByteSize::get),
            Ok(bytes),
            "{text} round trip"
        );
    }
    assert_eq!(ByteSize::kib(3).as_usize(), 3072);
    let max = ByteSize::new(u64::MAX);
    assert_eq!(max.to_string().parse::<ByteSize>(), Ok(max));
}

#[test]
fn byte_sizes_refused_with_reasons() {
    let cases = [
        ("-1", "byte sizes cannot be negative"),
        ("16EiB", "unknown unit `EiB`"),
        ("10mib", "unknown unit `mib` (did you mean `MiB`?)"),
        ("1.5MiB", "fractions are not supported"),
        ("20000000TiB", "too large"),
        ("18446744073709551616", "too large"),
        ("1GiB512MiB", "expected one number and one unit"),
        ("MiB", "expected a number"),
    ];
    for (text, reason) in cases {
        let message = text
            .parse::<ByteSize>()
            .err()
            .map(|e| e.to_string())
            .unwrap_or_default();
        assert!(
            message.starts_with(&format!("invalid byte size `{text}`: ")),
            "{text}: {message}"
        );
        assert!(message.contains(reason), "{text}: {message}");
    }
}

#[test]
fn units_serialize_as_their_canonical_strings() -> Result<(), serde_yaml::Error> {
    #[derive(Debug, PartialEq, serde::Serialize, serde::Deserialize)]
    struct Both {
        timeout: Duration,
        size: ByteSize,
    }
    let both: Both = serde_yaml::from_str("timeout: 90s\nsize: 1048576\n")?;
    assert_eq!(
        both,
        Both {
            timeout: ms(90_000),
            size: ByteSize::mib(1)
        }
    );
    let text = serde_yaml::to_string(&both)?;
    assert_eq!(text, "timeout: 1m30s\nsize: 1MiB\n");
    assert_eq!(serde_yaml::from_str::<Both>(&text)?, both);
    Ok(())
}
