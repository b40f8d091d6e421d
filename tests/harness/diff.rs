//! Differential runs: the same scenario with two firewalls in sibling namespace sets, compared
//! verdict by verdict and text by text.

use crate::fw::Fw;
use crate::lab::Lab;

/// What a scenario leaves behind for comparison.
#[derive(Clone, Debug, Default)]
pub struct Transcript {
    /// Which firewall ran.
    pub fw: String,
    /// Every probe, in order: (description, got through).
    pub verdicts: Vec<(String, bool)>,
    /// Named outputs (e.g. `"-L -v -x -n after traffic"`), in order.
    pub texts: Vec<(String, String)>,
    /// Verdicts that were not the expected ones.
    pub failures: Vec<String>,
}

impl Transcript {
    pub fn new(lab: &Lab) -> Transcript {
        Transcript {
            fw: lab.fw.label().to_string(),
            ..Transcript::default()
        }
    }

    /// Records a named output.
    pub fn text(&mut self, name: &str, text: String) {
        self.texts.push((name.to_string(), text));
    }

    /// The output recorded under `name`.
    pub fn get(&self, name: &str) -> &str {
        self.texts
            .iter()
            .find(|(n, _)| n == name)
            .map(|(_, t)| t.as_str())
            .unwrap_or_else(|| panic!("no output named {name:?} in the transcript"))
    }

    /// Takes the verdicts and failures of `lab` (so that dropping the lab does not panic).
    pub fn finish(mut self, lab: &Lab) -> Transcript {
        self.verdicts = lab.verdicts();
        self.failures = lab.take_failures();
        self
    }

    /// Panics if any verdict was unexpected.
    #[track_caller]
    pub fn assert_expected(&self) {
        assert!(
            self.failures.is_empty(),
            "[{}] {} verdict(s) differ from what was expected:\n{}",
            self.fw,
            self.failures.len(),
            self.failures.join("\n")
        );
    }
}

/// Runs `scenario` with `reference` and with `tested` at the same time (each in its own
/// namespaces) and panics, showing every difference, unless the verdicts and all recorded
/// outputs are identical.
pub fn differential(reference: Fw, tested: Fw, scenario: fn(Fw) -> Transcript) {
    let (r, t) = std::thread::scope(|s| {
        let hr = s.spawn(move || scenario(reference));
        let ht = s.spawn(move || scenario(tested));
        (hr.join(), ht.join())
    });
    let r = r.unwrap_or_else(|e| std::panic::resume_unwind(e));
    let t = t.unwrap_or_else(|e| std::panic::resume_unwind(e));
    let mut problems = Vec::new();
    if r.verdicts != t.verdicts {
        let mut s = format!("verdicts differ ({} | {}):", r.fw, t.fw);
        let n = r.verdicts.len().max(t.verdicts.len());
        for i in 0..n {
            let a = r.verdicts.get(i);
            let b = t.verdicts.get(i);
            let show = |v: Option<&(String, bool)>| match v {
                Some((d, p)) => format!("{d}: {}", if *p { "pass" } else { "drop" }),
                None => "-".to_string(),
            };
            let mark = if a == b { "  " } else { "!!" };
            s.push_str(&format!("\n  {mark} {} | {}", show(a), show(b)));
        }
        problems.push(s);
    }
    for (name, rt) in &r.texts {
        match t.texts.iter().find(|(n, _)| n == name) {
            None => problems.push(format!("{}: missing from the {} run", name, t.fw)),
            Some((_, tt)) if tt != rt => problems.push(format!(
                "{name} differs (-: {}, +: {}):\n{}",
                r.fw,
                t.fw,
                line_diff(rt, tt)
            )),
            Some(_) => {}
        }
    }
    for (who, tr) in [(&r.fw, &r), (&t.fw, &t)] {
        if !tr.failures.is_empty() {
            problems.push(format!(
                "[{who}] unexpected verdicts:\n{}",
                tr.failures.join("\n")
            ));
        }
    }
    assert!(
        problems.is_empty(),
        "differential run failed:\n{}",
        problems.join("\n\n")
    );
}

/// A small line diff: lines of `a` missing from `b` as `-`, extra lines of `b` as `+`, common
/// lines as ` ` (longest common subsequence; outputs here are short).
pub fn line_diff(a: &str, b: &str) -> String {
    let a: Vec<&str> = a.lines().collect();
    let b: Vec<&str> = b.lines().collect();
    let (n, m) = (a.len(), b.len());
    let mut l = vec![vec![0usize; m + 1]; n + 1];
    for i in (0..n).rev() {
        for j in (0..m).rev() {
            l[i][j] = if a[i] == b[j] {
                l[i + 1][j + 1] + 1
            } else {
                l[i + 1][j].max(l[i][j + 1])
            };
        }
    }
    let (mut i, mut j, mut out) = (0, 0, String::new());
    while i < n || j < m {
        if i < n && j < m && a[i] == b[j] {
            out.push_str(&format!("   {:?}\n", a[i]));
            i += 1;
            j += 1;
        } else if i < n && (j == m || l[i + 1][j] >= l[i][j + 1]) {
            out.push_str(&format!(" - {:?}\n", a[i]));
            i += 1;
        } else {
            out.push_str(&format!(" + {:?}\n", b[j]));
            j += 1;
        }
    }
    out
}

#[cfg(test)]
mod tests {
    #[test]
    fn line_diff_marks_changes() {
        assert_eq!(
            super::line_diff("a\nb\nc", "a\nx\nc"),
            "   \"a\"\n - \"b\"\n + \"x\"\n   \"c\"\n"
        );
        assert_eq!(super::line_diff("a", "a\nb"), "   \"a\"\n + \"b\"\n");
    }
}
