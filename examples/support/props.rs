//! `-X prop=value` producer properties, as the `produce`, `quickstart` and
//! `producer_perf` examples take them (kcat style): Java's key names, e.g.
//! `-X acks=1 -X security.protocol=SASL_SSL -X sasl.mechanism=SCRAM-SHA-512`.
//!
//! Examples include it with `#[path = "support/props.rs"] mod props;`.

#![allow(dead_code)] // each includer uses a part of it

use kafka_sansio::producer::{ConfigError, ProducerConfig};

/// Splits `key=value` at the first `=`; `flag` names the option in the error.
pub fn pair(arg: &str, flag: &str) -> Result<(String, String), String> {
    match arg.split_once('=') {
        Some((k, v)) if !k.is_empty() => Ok((k.to_owned(), v.to_owned())),
        _ => Err(format!("{flag} must be key=value, got `{arg}`")),
    }
}

/// Sets every property on `config`, in order; the first one refused is the error.
pub fn apply(config: &mut ProducerConfig, props: &[(String, String)]) -> Result<(), ConfigError> {
    for (k, v) in props {
        config.set(k, v)?;
    }
    Ok(())
}
