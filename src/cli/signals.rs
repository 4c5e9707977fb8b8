//! The signals that stop `simseries run`: Ctrl-C and SIGTERM.

/// Resolves on Ctrl-C or SIGTERM.
pub async fn interrupt() {
    let mut term = tokio::signal::unix::signal(tokio::signal::unix::SignalKind::terminate())
        .expect("SIGTERM can be handled");
    tokio::select! {
        _ = tokio::signal::ctrl_c() => {}
        _ = term.recv() => {}
    }
}
