//! The file system's limit for writing a plan's inputs, for benches/compare.sh: reads every
//! file of SOURCE into memory, then creates, writes and closes each one into DEST (created
//! empty) from one thread, the least any writer does, and prints the seconds that took.
//!
//!   minimal-writer SOURCE DEST
use std::io::Write;
use std::time::Instant;

fn main() {
    let args: Vec<String> = std::env::args().collect();
    let (source, dest) = (&args[1], std::path::Path::new(&args[2]));
    let mut files = Vec::new();
    for entry in std::fs::read_dir(source).expect("SOURCE is a folder") {
        let entry = entry.unwrap();
        files.push((entry.file_name(), std::fs::read(entry.path()).unwrap()));
    }
    let _ = std::fs::remove_dir_all(dest);
    std::fs::create_dir_all(dest).unwrap();
    // Nothing of the reads or an earlier run is left to flush while the writes are timed.
    std::process::Command::new("sync").status().unwrap();
    let start = Instant::now();
    for (name, body) in &files {
        let mut file = std::fs::File::create(dest.join(name)).unwrap();
        file.write_all(body).unwrap();
    }
    println!("{:.3}", start.elapsed().as_secs_f64());
}
