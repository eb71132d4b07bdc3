//! Loads and validates a spec N times: a target for profilers, or for `time`.
//!
//! `cargo build --release -p kars-spec --example load_loop`, then
//! `valgrind --tool=callgrind target/release/examples/load_loop workflows/kars-release.yaml 50`
//! (instructions per load: the total divided by N, less the start-up).

fn main() -> Result<(), Box<dyn std::error::Error>> {
    let mut args = std::env::args().skip(1);
    let path = args.next().unwrap_or_else(|| "workflows/kars-release.yaml".to_owned());
    let n: u32 = args.next().map_or(Ok(1000), |s| s.parse())?;
    let text = std::fs::read_to_string(&path)?;
    let mut nodes = 0;
    for _ in 0..n {
        let spec = kars_spec::load(std::hint::black_box(&text), &path)?;
        nodes += spec.spec().nodes.len();
    }
    println!("{n} loads of {path}: {nodes} nodes in all");
    Ok(())
}
