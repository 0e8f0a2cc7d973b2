//! Runs the built `gatehouse-edge` binary: `validate` accepts the example config and refuses a
//! bad one with exit code 64. The table of config errors is in `internal/tests/cli.rs`: the
//! binaries share the config loader.

use gatehouse_tests::cli::{assert_bad_config_refused, assert_example_validates};

const BIN: &str = env!("CARGO_BIN_EXE_gatehouse-edge");

#[test]
fn validate_accepts_the_example() {
    assert_example_validates(BIN, "gatehouse-edge", env!("CARGO_MANIFEST_DIR"));
}

#[test]
fn validate_refuses_a_bad_config() {
    assert_bad_config_refused(BIN, "gatehouse-edge");
}
