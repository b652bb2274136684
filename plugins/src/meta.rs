//! What the caller says about a plugin, and the marker for bytes it has verified.

use std::fmt;

use serde::{Deserialize, Serialize};

use crate::error::InstallError;

/// The WIT package the host implements.
pub const WIT_PACKAGE: &str = "hotspot:plugin";
/// The contract version the host was built against (`plugins/wit/plugin.wit`). Plugins must share its major.
pub const WIT_VERSION: Version = Version {
    major: 1,
    minor: 0,
    patch: 0,
};

/// Metadata of a plugin, from its (already verified) bundle manifest.
#[derive(Debug, Clone, PartialEq, Eq, Hash, Serialize, Deserialize)]
pub struct PluginMeta {
    /// Plugin name, e.g. `acme-fs200-decoder` (1..=64 characters of `a-z 0-9 - _ .`).
    pub name: String,
    /// The plugin's own version, `MAJOR.MINOR.PATCH`; a slot only accepts increasing versions.
    pub version: String,
    /// The contract it was built against, e.g. `hotspot:plugin@1.0.0`.
    pub wit: String,
    /// The world it implements: `decoder-plugin`, `quality-plugin` or `policy-plugin`.
    pub world: String,
}

impl PluginMeta {
    /// Metadata for a plugin built against this host's contract version.
    pub fn new(name: &str, version: &str, world: &str) -> Self {
        Self {
            name: name.to_owned(),
            version: version.to_owned(),
            wit: format!("{WIT_PACKAGE}@{WIT_VERSION}"),
            world: world.to_owned(),
        }
    }

    /// `name@version`, for messages.
    pub fn label(&self) -> String {
        format!("{}@{}", self.name, self.version)
    }

    /// Checks the fields' syntax and the contract version; returns the parsed plugin version.
    pub(crate) fn check(&self, expected_world: &str) -> Result<Version, InstallError> {
        let bad = |field: &str, why: String| InstallError::BadMetadata {
            field: field.to_owned(),
            reason: why,
        };
        let name_ok = !self.name.is_empty()
            && self.name.len() <= 64
            && self.name.bytes().all(|b| {
                b.is_ascii_lowercase() || b.is_ascii_digit() || matches!(b, b'-' | b'_' | b'.')
            });
        if !name_ok {
            return Err(bad(
                "name",
                format!("{:?} must be 1..=64 characters of a-z 0-9 - _ .", self.name),
            ));
        }
        let version = Version::parse(&self.version).ok_or_else(|| {
            bad(
                "version",
                format!("{:?} is not MAJOR.MINOR.PATCH", self.version),
            )
        })?;
        let wit = self
            .wit
            .strip_prefix(WIT_PACKAGE)
            .and_then(|v| v.strip_prefix('@'))
            .and_then(Version::parse)
            .ok_or_else(|| {
                bad(
                    "wit",
                    format!("{:?} is not {WIT_PACKAGE}@MAJOR.MINOR.PATCH", self.wit),
                )
            })?;
        if wit.major != WIT_VERSION.major {
            return Err(InstallError::WitVersion {
                found: wit.to_string(),
                supported: format!("{}.x", WIT_VERSION.major),
            });
        }
        if self.world != expected_world {
            return Err(InstallError::WrongWorld {
                expected: expected_world.to_owned(),
                found: format!("metadata declares world {:?}", self.world),
            });
        }
        Ok(version)
    }
}

/// A semantic version without pre-release or build parts.
#[derive(Debug, Clone, Copy, PartialEq, Eq, PartialOrd, Ord, Hash)]
pub struct Version {
    /// Incompatible changes.
    pub major: u64,
    /// Additions.
    pub minor: u64,
    /// Fixes.
    pub patch: u64,
}

impl Version {
    /// Parses `MAJOR.MINOR.PATCH` (decimal, no leading `+`/`-`, no suffix).
    pub fn parse(text: &str) -> Option<Self> {
        let mut parts = text.split('.');
        let mut next = || {
            parts
                .next()
                .filter(|p| !p.is_empty() && p.len() <= 19 && p.bytes().all(|b| b.is_ascii_digit()))
                .and_then(|p| p.parse().ok())
        };
        let v = Self {
            major: next()?,
            minor: next()?,
            patch: next()?,
        };
        parts.next().is_none().then_some(v)
    }
}

impl fmt::Display for Version {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        write!(f, "{}.{}.{}", self.major, self.minor, self.patch)
    }
}

/// Component bytes whose bundle signature the caller has ALREADY checked.
///
/// This crate does not check signatures: the gateway verifies the signed bundle (its own format) and only then
/// wraps the bytes here. Everything this crate does afterwards (compiling, caching, running) trusts that these
/// bytes are the publisher's; it still treats their behaviour as hostile (limits, no ambient authority).
#[derive(Clone, Copy)]
pub struct VerifiedWasm<'a> {
    bytes: &'a [u8],
}

impl<'a> VerifiedWasm<'a> {
    /// Marks `bytes` as the verified content of a signed plugin bundle. Call it only after the signature check
    /// succeeded on exactly these bytes.
    pub fn signature_checked_by_caller(bytes: &'a [u8]) -> Self {
        Self { bytes }
    }

    /// The bytes.
    pub fn bytes(&self) -> &'a [u8] {
        self.bytes
    }
}

impl fmt::Debug for VerifiedWasm<'_> {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        write!(f, "VerifiedWasm({} bytes)", self.bytes.len())
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn versions_parse_strictly() {
        assert_eq!(
            Version::parse("1.20.3"),
            Some(Version {
                major: 1,
                minor: 20,
                patch: 3
            })
        );
        for bad in [
            "",
            "1",
            "1.2",
            "1.2.3.4",
            "1.2.x",
            "-1.2.3",
            "+1.2.3",
            "1..3",
            "1.2.3-rc1",
        ] {
            assert_eq!(Version::parse(bad), None, "{bad}");
        }
        assert!(Version::parse("1.2.10") > Version::parse("1.2.9"));
    }

    #[test]
    fn metadata_checks_name_contract_and_world() {
        let ok = PluginMeta::new("acme-fs200", "1.0.0", "decoder-plugin");
        assert!(ok.check("decoder-plugin").is_ok());
        assert!(matches!(
            ok.check("quality-plugin"),
            Err(InstallError::WrongWorld { .. })
        ));
        let mut v2 = ok.clone();
        v2.wit = "hotspot:plugin@2.1.0".into();
        assert!(matches!(
            v2.check("decoder-plugin"),
            Err(InstallError::WitVersion { .. })
        ));
        let mut other = ok.clone();
        other.wit = "other:plugin@1.0.0".into();
        assert!(matches!(
            other.check("decoder-plugin"),
            Err(InstallError::BadMetadata { .. })
        ));
        let mut name = ok;
        name.name = "Bad Name".into();
        assert!(matches!(
            name.check("decoder-plugin"),
            Err(InstallError::BadMetadata { .. })
        ));
    }
}
