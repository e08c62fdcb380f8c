//! Image builds: nix invocation, internal-json log parsing, artifact placement, manifest.
