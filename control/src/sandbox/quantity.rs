//! Resource quantities: `500m`/`2` CPUs, `512Mi`/`1G` memory, GPU counts.
//!
//! Unlike OpenSandbox, which silently ignores values it cannot parse
//! (including fractional memory such as `1.5Gi`), Sandgate accepts decimal
//! amounts and rejects anything else with a message naming the value.

/// The largest CPU quantity accepted anywhere (a million cores); runtimes
/// apply their host's real count on top.
const MAX_CPU_MILLIS: u64 = 1_000_000_000;

/// Parses a CPU quantity into millicores: `500m` → 500, `2` → 2000, `0.5` → 500.
pub fn parse_cpu_millis(text: &str) -> Result<u64, String> {
    let value = text.trim();
    let millis = match value.strip_suffix('m') {
        Some(number) => parse_decimal(number).map(|n| n.round()),
        None => parse_decimal(value).map(|n| (n * 1000.0).round()),
    };
    match millis {
        Some(m) if m >= 1.0 && m <= MAX_CPU_MILLIS as f64 => Ok(m as u64),
        Some(m) if m >= 1.0 => Err(format!(
            "{text:?} is more CPU than any host has (at most {} cores)",
            MAX_CPU_MILLIS / 1000
        )),
        Some(_) => Err(format!("{text:?} must be at least 1m (one millicore)")),
        None => Err(format!(
            "{text:?} is not a CPU quantity; use cores (\"2\", \"0.5\") or millicores (\"500m\")"
        )),
    }
}

/// Parses a memory quantity into bytes: `512Mi`, `1Gi`, `1G`, `1.5Gi`, `1000000`.
/// Suffixes are Kubernetes' (`Ki Mi Gi Ti Pi Ei`, `k M G T P E`), also
/// accepted in any case and with a trailing `b`, as Docker users write them.
pub fn parse_memory_bytes(text: &str) -> Result<u64, String> {
    let value = text.trim();
    let split = value
        .find(|c: char| !(c.is_ascii_digit() || c == '.'))
        .unwrap_or(value.len());
    let (number, unit) = value.split_at(split);
    let bytes = parse_decimal(number)
        .zip(memory_multiplier(unit))
        .map(|(n, m)| (n * m as f64).floor());
    match bytes {
        Some(b) if b >= 1.0 && b <= i64::MAX as f64 => Ok(b as u64),
        Some(b) if b >= 1.0 => Err(format!("{text:?} is more memory than any host has")),
        Some(_) => Err(format!("{text:?} must be at least 1 byte")),
        None => Err(format!(
            "{text:?} is not a memory quantity; use bytes or a unit such as \"512Mi\", \"1Gi\", \"2G\""
        )),
    }
}

/// Parses a GPU request: a positive count, or `all`. `None` means "no GPU" (`0`).
pub fn parse_gpu(text: &str) -> Result<Option<super::model::GpuRequest>, String> {
    use super::model::GpuRequest;
    let value = text.trim();
    if value.eq_ignore_ascii_case("all") {
        return Ok(Some(GpuRequest::All));
    }
    match value.parse::<u32>() {
        Ok(0) => Ok(None),
        Ok(n) => Ok(Some(GpuRequest::Count(n))),
        Err(_) => Err(format!(
            "{text:?} is not a GPU count; use a whole number or \"all\""
        )),
    }
}

fn parse_decimal(number: &str) -> Option<f64> {
    let well_formed = !number.is_empty()
        && number.chars().all(|c| c.is_ascii_digit() || c == '.')
        && number.matches('.').count() <= 1
        && number != ".";
    well_formed.then(|| number.parse::<f64>().ok()).flatten()
}

fn memory_multiplier(unit: &str) -> Option<u64> {
    let lower = unit.to_ascii_lowercase();
    let stem = lower.strip_suffix('b').unwrap_or(&lower);
    let power = |base: u64, exp: u32| base.checked_pow(exp);
    match stem {
        "" => Some(1),
        "k" => power(1000, 1),
        "m" => power(1000, 2),
        "g" => power(1000, 3),
        "t" => power(1000, 4),
        "p" => power(1000, 5),
        "e" => power(1000, 6),
        "ki" => power(1024, 1),
        "mi" => power(1024, 2),
        "gi" => power(1024, 3),
        "ti" => power(1024, 4),
        "pi" => power(1024, 5),
        "ei" => power(1024, 6),
        _ => None,
    }
}

#[cfg(test)]
mod tests {
    use super::super::model::GpuRequest;
    use super::*;

    #[test]
    fn cpu_quantities() {
        assert_eq!(parse_cpu_millis("500m"), Ok(500));
        assert_eq!(parse_cpu_millis("2"), Ok(2000));
        assert_eq!(parse_cpu_millis("0.25"), Ok(250));
        assert!(parse_cpu_millis("0").is_err());
        assert!(parse_cpu_millis("bad").is_err());
        assert!(parse_cpu_millis("-1").is_err());
        assert!(parse_cpu_millis("1.2.3").is_err());
        assert!(parse_cpu_millis("0.0001").is_err(), "rounds to 0m");
        assert_eq!(parse_cpu_millis("1000000"), Ok(1_000_000_000));
        for absurd in ["1000001", "1e300", "99999999999999999999999999"] {
            let error = parse_cpu_millis(absurd).unwrap_err();
            assert!(!error.contains("at least"), "{absurd}: {error}");
        }
    }

    #[test]
    fn memory_quantities() {
        assert_eq!(parse_memory_bytes("512Mi"), Ok(536_870_912));
        assert_eq!(parse_memory_bytes("1G"), Ok(1_000_000_000));
        assert_eq!(parse_memory_bytes("2gi"), Ok(2 << 30));
        assert_eq!(parse_memory_bytes("1.5Gi"), Ok(1_610_612_736));
        assert_eq!(parse_memory_bytes("1024"), Ok(1024));
        assert_eq!(parse_memory_bytes("64mb"), Ok(64_000_000));
        assert!(parse_memory_bytes("invalid").is_err());
        assert!(parse_memory_bytes("12XB").is_err());
        assert!(parse_memory_bytes("Gi").is_err());
        assert!(parse_memory_bytes("0").is_err());
        assert!(
            parse_memory_bytes("99999999Ei")
                .unwrap_err()
                .contains("more memory")
        );
    }

    #[test]
    fn gpu_requests() {
        assert_eq!(parse_gpu("1"), Ok(Some(GpuRequest::Count(1))));
        assert_eq!(parse_gpu("ALL"), Ok(Some(GpuRequest::All)));
        assert_eq!(parse_gpu("0"), Ok(None));
        assert!(parse_gpu("-1").is_err());
        assert!(parse_gpu("bad").is_err());
    }

    proptest::proptest! {
        #[test]
        fn parsers_never_panic(s in ".{0,24}") {
            let _ = parse_cpu_millis(&s);
            let _ = parse_memory_bytes(&s);
            let _ = parse_gpu(&s);
        }
    }
}
