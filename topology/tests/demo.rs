//! Tests of the demo services over real sockets on 127.0.0.1 (port 0), each service started
//! in-process with `gatehouse_topology::serve`.

mod demo {
    pub mod support;

    mod admin;
    mod cli;
    mod idp;
    mod orders;
    mod rest;
}
