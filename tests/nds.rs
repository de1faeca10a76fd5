//! NDS: every embedded record builds a network whose parameter count is the
//! record's `params` (the structure check the NDS data allows).

use rayon::prelude::*;
use rbflex::benchmarks::nds::{Convention, NdsTable, EMBEDDED};
use rbflex::spaces::nds::build_net;

#[test]
fn every_embedded_record_has_its_parameter_count() {
    tch::set_num_threads(1);
    let mut report = Vec::new();
    for (family, _, _) in EMBEDDED {
        let t = NdsTable::embedded(family, Convention::Rbflex).unwrap();
        let imagenet = t.dataset == rbflex::dataset::Dataset::ImageNet;
        let classes = t.dataset.num_classes();
        let wrong: Vec<(usize, i64, i64)> = t
            .records
            .par_iter()
            .enumerate()
            .filter_map(|(i, r)| {
                let net = build_net(&r.net, imagenet, classes).unwrap();
                let got = net.params().count();
                (got != r.params).then_some((i, got, r.params))
            })
            .collect();
        report.push(format!(
            "{family}: {} of {} wrong {:?}",
            wrong.len(),
            t.records.len(),
            wrong.iter().take(2).collect::<Vec<_>>()
        ));
    }
    let bad: Vec<&String> = report.iter().filter(|l| !l.contains(": 0 of")).collect();
    assert!(bad.is_empty(), "{report:#?}");
}
