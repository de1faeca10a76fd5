use rbflex::nets::{BnStats, Counter};
use rbflex::proxies::rbflex::{score, Gammas};
use rbflex::spaces::{self, Dataset};
fn main() {
    tch::set_num_threads(1);
    let s = spaces::by_name("nb201").unwrap();
    let x = tch::Tensor::randn([3, 3, 32, 32], (tch::Kind::Float, tch::Device::Cpu));
    let n = 60;
    let (mut tb, mut tf, mut tc, mut tbatch) = (0.0, 0.0, 0.0, 0.0);
    for i in 0..n {
        let arch = s.arch(i * 250).unwrap();
        let t0 = std::time::Instant::now();
        let net = spaces::build_seeded(s, &arch, Dataset::Cifar10, 1).unwrap();
        let t1 = std::time::Instant::now();
        let _ = score(net.as_ref(), &x, Gammas::default());
        let t2 = std::time::Instant::now();
        let mut c = Counter::default();
        net.forward(&x, BnStats::PerImage, &mut c);
        let t3 = std::time::Instant::now();
        net.forward(&x, BnStats::Batch, &mut c);
        let t4 = std::time::Instant::now();
        tb += (t1 - t0).as_secs_f64();
        tf += (t2 - t1).as_secs_f64();
        tc += (t3 - t2).as_secs_f64();
        tbatch += (t4 - t3).as_secs_f64();
    }
    let f = |t: f64| t * 1e3 / n as f64;
    println!(
        "build {:.2} ms, score {:.2} ms, forward-only per-image {:.2} ms, forward batch {:.2} ms",
        f(tb),
        f(tf),
        f(tc),
        f(tbatch)
    );
}
