//! Empty: a build script makes cargo resolve `[build-dependencies]`, the host side of the hack.

fn main() {}
