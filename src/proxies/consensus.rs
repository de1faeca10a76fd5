//! `consensus`: a label-free rank aggregation that weighs its members per
//! run by what the run itself shows.
//!
//! The fixed `ensemble` sums AZ-NAS' log-ranks over six members chosen on
//! NAS-Bench-201; on other spaces some of them rank near chance or against
//! accuracy (AZ-NAS' trainability on NDS, MeCo on NATS-SSS), and the sum
//! falls far behind the best single proxy. `consensus` keeps an anchor
//! (rbflex, weight 1) and weighs every other member by how far, over this
//! run's candidates, its ranking agrees with the anchor's: Spearman's rho
//! between the two, 0 where it is negative or undefined. Its value is the
//! weighted sum of `ln(rank / n)` (AZ-NAS' log-rank rule, as `az` and
//! `ensemble`). No accuracy is read: the weights come from the members'
//! values on the candidates alone, so it is the same rule on every space
//! and dataset, with nothing tuned (the weight is the agreement itself);
//! the anchor was checked leave-one-space-out (README, "Proxies").

use super::rank_sum;
use crate::stats::{average_ranks, pearson};

/// The members that count in full (weight 1).
pub const ANCHOR: &[&str] = &["rbflex"];

/// Every member the consensus may use: distinct measurements, cheap on
/// NB201 (one AZ-NAS pass brings four of them, naswot included);
/// `az_complexity` is left out, being `flops` again.
pub const MEMBERS: &[&str] = &[
    "rbflex",
    "synflow",
    "naswot",
    "meco",
    "params",
    "flops",
    "l2_norm",
    "az_expressivity",
    "az_progressivity",
    "az_trainability",
];

/// One member's standing in a run.
#[derive(Debug, Clone, PartialEq)]
pub struct Standing {
    /// The member.
    pub name: &'static str,
    /// Spearman's rho with the anchor's log-rank sum (NaN where either
    /// gives every candidate the same value).
    pub agreement: f64,
    /// Its weight in this run: 1 for an anchor member, else the agreement
    /// where positive, else 0.
    pub weight: f64,
    /// Whether it is an anchor member.
    pub anchor: bool,
}

/// Each member's weight over these candidates (`members`: name and value
/// per candidate). An anchor member the run lacks is left out of the anchor.
pub fn standings(members: &[(&'static str, Vec<f64>)]) -> Vec<Standing> {
    let anchor: Vec<Vec<f64>> = members.iter().filter(|(n, _)| ANCHOR.contains(n)).map(|(_, v)| v.clone()).collect();
    let a = average_ranks(&rank_sum(&anchor));
    members
        .iter()
        .map(|(name, v)| {
            let is_anchor = ANCHOR.contains(name);
            let clean: Vec<f64> = v.iter().copied().map(super::nan_as_lowest).collect();
            let agreement = pearson(&average_ranks(&clean), &a);
            let weight = if is_anchor {
                1.0
            } else if agreement > 0.0 {
                agreement
            } else {
                0.0
            };
            Standing { name, agreement, weight, anchor: is_anchor }
        })
        .collect()
}

/// The consensus value of every candidate: the members' `ln(rank / n)`
/// summed with their weights.
pub fn combine(members: &[(&'static str, Vec<f64>)]) -> Vec<f64> {
    let n = members.first().map_or(0, |(_, v)| v.len());
    let mut out = vec![0.0; n];
    for ((_, v), s) in members.iter().zip(standings(members)) {
        if s.weight == 0.0 {
            continue;
        }
        for (o, l) in out.iter_mut().zip(rank_sum(std::slice::from_ref(v))) {
            *o += s.weight * l;
        }
    }
    out
}

/// One line on the weights the consensus gave in a run, for the reports.
pub fn describe(members: &[(&'static str, Vec<f64>)]) -> String {
    let s = standings(members);
    let weights: Vec<String> = s.iter().filter(|x| !x.anchor).map(|x| format!("{} {:.2}", x.name, x.weight)).collect();
    format!(
        "consensus over these {} networks: {} weight 1, the others their Spearman with it (0 if negative): {}",
        members.first().map_or(0, |(_, v)| v.len()),
        ANCHOR.join(" + "),
        weights.join(", ")
    )
}

#[cfg(test)]
mod tests {
    use super::*;

    fn lr(ranks: &[f64]) -> Vec<f64> {
        let n = ranks.len() as f64;
        ranks.iter().map(|r| (r / n).ln()).collect()
    }

    #[test]
    fn members_weigh_their_agreement_with_the_anchor() {
        // five candidates; the anchor ranks them 1..5
        let members = vec![
            ("rbflex", vec![1.0, 2.0, 3.0, 4.0, 5.0]),
            // ranks 1 3 2 4 5: rho 0.9
            ("synflow", vec![10.0, 30.0, 20.0, 40.0, 50.0]),
            // exactly reversed: rho -1, weight 0
            ("meco", vec![5.0, 4.0, 3.0, 2.0, 1.0]),
            // ranks 3 1 5 2 4: rho 0.3
            ("params", vec![3.0, 1.0, 5.0, 2.0, 4.0]),
            // every candidate alike: rho NaN, weight 0
            ("flops", vec![7.0; 5]),
        ];
        let s = standings(&members);
        let w: Vec<f64> = s.iter().map(|x| x.weight).collect();
        assert_eq!(w[0], 1.0);
        assert!((w[1] - 0.9).abs() < 1e-12 && (w[3] - 0.3).abs() < 1e-12, "{w:?}");
        assert_eq!((w[2], w[4]), (0.0, 0.0));
        assert!((s[2].agreement + 1.0).abs() < 1e-12 && s[4].agreement.is_nan());
        let want: Vec<f64> = (0..5)
            .map(|i| {
                lr(&[1.0, 2.0, 3.0, 4.0, 5.0])[i]
                    + w[1] * lr(&[1.0, 3.0, 2.0, 4.0, 5.0])[i]
                    + w[3] * lr(&[3.0, 1.0, 5.0, 2.0, 4.0])[i]
            })
            .collect();
        let got = combine(&members);
        for (g, w) in got.iter().zip(&want) {
            assert!((g - w).abs() < 1e-12, "{got:?} vs {want:?}");
        }
        assert_eq!(
            describe(&members),
            "consensus over these 5 networks: rbflex weight 1, the others their Spearman with it (0 if negative): \
             synflow 0.90, meco 0.00, params 0.30, flops 0.00"
        );
    }

    #[test]
    fn non_finite_values_rank_lowest_as_in_every_aggregation() {
        // NaN and -inf are the lowest: the member's -inf on the anchor's NaN
        // candidate agrees with it fully, so the value is the plain sum
        let members = vec![("rbflex", vec![f64::NAN, 2.0, 3.0]), ("naswot", vec![f64::NEG_INFINITY, 5.0, 6.0])];
        assert!((standings(&members)[1].weight - 1.0).abs() < 1e-12);
        let want = rank_sum(&[members[0].1.clone(), members[1].1.clone()]);
        for (g, w) in combine(&members).iter().zip(&want) {
            assert!((g - w).abs() < 1e-12);
        }
    }
}
