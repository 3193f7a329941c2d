//! loyalty-till: the cashier's loyalty screen beside iikoFront.
//!
//! Layers, from the inside out:
//! - [`money`], [`mask`], [`domain`]: plain data and rules of presentation;
//! - [`workflow`]: the pure core, `update(state, event) -> effects`, no I/O and no clock;
//! - [`backend`] and [`ledger`]: the loyalty ledger behind one trait (embedded SQLite today);
//! - [`worker`]: runs effects on a background thread and turns results back into events;
//! - [`ui`]: renders the state and emits events; [`i18n`]: every user-visible string;
//! - [`wire`]: the loyalty server's request and answer bodies, shared by [`server`] and [`remote`].

pub mod app;
pub mod backend;
pub mod backoffice;
pub mod cli;
pub mod clipboard;
pub mod config;
pub mod devices;
pub mod diagnostics;
pub mod domain;
pub mod handhelds;
pub mod i18n;
pub mod ledger;
pub mod logging;
pub mod loyalty;
pub mod mask;
pub mod money;
pub mod platform;
pub mod qr;
pub mod remote;
pub mod scan;
pub mod server;
pub mod shift;
pub mod startup;
pub mod support;
pub mod ui;
pub mod wedge;
pub mod wire;
pub mod worker;
pub mod workflow;
