//! Progress bars for sampler runs (indicatif), drawn on stderr only when it
//! is a terminal and `--quiet` is not given.

use std::sync::Mutex;
use std::sync::atomic::{AtomicBool, AtomicUsize, Ordering};

use indicatif::{ProgressBar, ProgressDrawTarget, ProgressStyle};
use popinf::inference::sampler::SamplerObserver;

/// Set by the first Ctrl-C: samplers finish the draw in hand and stop,
/// keeping what they drew.
pub static STOP: AtomicBool = AtomicBool::new(false);

/// First Ctrl-C: stop cleanly (results are written from the draws so far).
/// Second: quit at once.
pub fn install_ctrl_c() {
    let _ = ctrlc::set_handler(|| {
        if STOP.swap(true, Ordering::SeqCst) {
            eprintln!("\npopinf: interrupted again; quitting without writing results");
            std::process::exit(130);
        }
        eprintln!("\npopinf: stopping after the current draws (Ctrl-C again to quit at once)");
    });
}

pub struct ProgressBars {
    quiet: bool,
    stage: Mutex<String>,
    bar: Mutex<Option<ProgressBar>>,
    per_chain: Mutex<Vec<u64>>,
    iterations: Mutex<u64>,
    divergences: AtomicUsize,
}

impl ProgressBars {
    pub fn new(quiet: bool) -> Self {
        Self {
            quiet,
            stage: Mutex::new(String::new()),
            bar: Mutex::new(None),
            per_chain: Mutex::new(Vec::new()),
            iterations: Mutex::new(0),
            divergences: AtomicUsize::new(0),
        }
    }
}

impl SamplerObserver for ProgressBars {
    fn on_stage(&self, label: &str) {
        *self.stage.lock().expect("progress lock") = label.to_string();
    }

    fn on_start(&self, chains: usize, iterations: u64) {
        let bar = if self.quiet {
            ProgressBar::hidden()
        } else {
            ProgressBar::with_draw_target(Some(chains as u64 * iterations), ProgressDrawTarget::stderr())
        };
        bar.set_style(
            ProgressStyle::with_template("{prefix:>34} [{bar:24}] {pos}/{len} eta {eta:>3}  {msg}")
                .expect("valid template")
                .progress_chars("=> "),
        );
        bar.set_prefix(self.stage.lock().expect("progress lock").clone());
        *self.per_chain.lock().expect("progress lock") = vec![0; chains];
        *self.iterations.lock().expect("progress lock") = iterations;
        self.divergences.store(0, Ordering::Relaxed);
        *self.bar.lock().expect("progress lock") = Some(bar);
    }

    fn on_draw(&self, chain: usize, tuning: bool, diverging: bool) {
        // Divergences while tuning are expected; count those after it.
        let counted = diverging && !tuning;
        if counted {
            self.divergences.fetch_add(1, Ordering::Relaxed);
        }
        let mut per_chain = self.per_chain.lock().expect("progress lock");
        if let Some(c) = per_chain.get_mut(chain) {
            *c += 1;
        }
        if let Some(bar) = self.bar.lock().expect("progress lock").as_ref() {
            bar.inc(1);
            // Refreshing the message is cheap but not free: every 25 draws.
            if bar.position() % 25 == 0 || counted {
                let iterations = *self.iterations.lock().expect("progress lock");
                let chains: Vec<String> = per_chain.iter().map(|d| format!("{d}/{iterations}")).collect();
                bar.set_message(format!(
                    "{:.0} draws/s  chains {}  divergences {}{}",
                    bar.per_sec(),
                    chains.join(" "),
                    self.divergences.load(Ordering::Relaxed),
                    if tuning { " (tuning)" } else { "" }
                ));
            }
        }
    }

    fn should_stop(&self) -> bool {
        STOP.load(Ordering::Relaxed)
    }

    fn on_finish(&self) {
        if let Some(bar) = self.bar.lock().expect("progress lock").take() {
            bar.finish_and_clear();
        }
    }
}
