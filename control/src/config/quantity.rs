//! Kubernetes container resource names and quantities, checked as OpenSandbox checks `egress.requests`/`limits`.

/// Parses a quantity (`250m`, `64Mi`, `1.5`, `2e3`) to its value, or `None`
/// when it does not follow Kubernetes' grammar.
pub(crate) fn parse(text: &str) -> Option<f64> {
    let (number, suffix) = split_number(text)?;
    let value: f64 = number.parse().ok()?;
    if let Some(scaled) = suffix
        .strip_prefix(['e', 'E'])
        .and_then(|digits| exponent(value, digits))
    {
        return Some(scaled);
    }
    Some(value * multiplier(suffix)?)
}

/// `[+-]?(digits[.digits*] | .digits)` and the rest.
fn split_number(text: &str) -> Option<(&str, &str)> {
    let unsigned = text.strip_prefix(['+', '-']).unwrap_or(text);
    let sign_len = text.len() - unsigned.len();
    let int_len = unsigned.bytes().take_while(u8::is_ascii_digit).count();
    let after_int = &unsigned[int_len..];
    let frac_len = match after_int.strip_prefix('.') {
        Some(frac) => 1 + frac.bytes().take_while(u8::is_ascii_digit).count(),
        None => 0,
    };
    if int_len == 0 && frac_len <= 1 {
        return None;
    }
    Some(text.split_at(sign_len + int_len + frac_len))
}

fn exponent(value: f64, digits: &str) -> Option<f64> {
    let unsigned = digits.strip_prefix(['+', '-']).unwrap_or(digits);
    if unsigned.is_empty() || !unsigned.bytes().all(|b| b.is_ascii_digit()) {
        return None;
    }
    let power: i32 = digits.parse().unwrap_or(if digits.starts_with('-') {
        i32::MIN
    } else {
        i32::MAX
    });
    Some(value * 10f64.powi(power))
}

fn multiplier(suffix: &str) -> Option<f64> {
    let decimal = ["n", "u", "m", "", "k", "M", "G", "T", "P", "E"];
    if let Some(index) = decimal.iter().position(|s| *s == suffix) {
        return Some(10f64.powi(i32::try_from(index).ok()? * 3 - 9));
    }
    let binary = ["Ki", "Mi", "Gi", "Ti", "Pi", "Ei"];
    let index = binary.iter().position(|s| *s == suffix)?;
    Some(2f64.powi((i32::try_from(index).ok()? + 1) * 10))
}

/// `cpu`, `memory`, `ephemeral-storage`, `hugepages-<size>`, or `<dns-subdomain>/<name>`.
pub(crate) fn is_resource_name(name: &str) -> bool {
    if matches!(name, "cpu" | "memory" | "ephemeral-storage") {
        return true;
    }
    if let Some(size) = name.strip_prefix("hugepages-") {
        return parse(size).is_some_and(|v| v.is_finite() && v > 0.0);
    }
    if name.starts_with("requests.") {
        return false;
    }
    let Some((prefix, resource)) = name.split_once('/') else {
        return false;
    };
    is_dns_subdomain(prefix) && is_qualified_name(resource)
}

/// Dot-separated DNS-1123 labels, 253 characters at most.
pub(crate) fn is_dns_subdomain(name: &str) -> bool {
    name.len() <= 253 && name.split('.').all(is_dns_label)
}

/// `[a-z0-9]([-a-z0-9]*[a-z0-9])?`, 1-63 characters.
fn is_dns_label(label: &str) -> bool {
    let ok = |b: u8| b.is_ascii_lowercase() || b.is_ascii_digit();
    let bytes = label.as_bytes();
    (1..=63).contains(&bytes.len())
        && ok(bytes[0])
        && ok(bytes[bytes.len() - 1])
        && bytes.iter().all(|b| ok(*b) || *b == b'-')
}

/// `[A-Za-z0-9]([-A-Za-z0-9_.]*[A-Za-z0-9])?`, 1-63 characters.
fn is_qualified_name(name: &str) -> bool {
    let bytes = name.as_bytes();
    (1..=63).contains(&bytes.len())
        && bytes[0].is_ascii_alphanumeric()
        && bytes[bytes.len() - 1].is_ascii_alphanumeric()
        && bytes
            .iter()
            .all(|b| b.is_ascii_alphanumeric() || matches!(b, b'-' | b'_' | b'.'))
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn quantities_follow_the_kubernetes_grammar() {
        let good = [
            ("250m", 0.25),
            ("64Mi", 67_108_864.0),
            ("1", 1.0),
            ("1.5", 1.5),
            (".5", 0.5),
            ("2e3", 2000.0),
            ("1k", 1000.0),
            ("1E", 1e18),
            ("2Ei", 2.0 * 2f64.powi(60)),
        ];
        for (text, value) in good {
            assert_eq!(parse(text), Some(value), "{text}");
        }
        for bad in [
            "", "m", "1K", "1mi", "NaN", "1 Gi", "1.2.3", ".", "1e", "Gi",
        ] {
            assert_eq!(parse(bad), None, "{bad:?}");
        }
    }

    #[test]
    fn resource_names_follow_the_kubernetes_rules() {
        for good in [
            "cpu",
            "memory",
            "ephemeral-storage",
            "hugepages-2Mi",
            "nvidia.com/gpu",
        ] {
            assert!(is_resource_name(good), "{good}");
        }
        for bad in [
            "gpu",
            "hugepages-0",
            "requests.cpu",
            "Nvidia.com/gpu",
            "a/",
            "/gpu",
        ] {
            assert!(!is_resource_name(bad), "{bad}");
        }
    }
}
