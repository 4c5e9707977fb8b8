//! Names and keys of the contract: run keys, group keys, and the dated folder layout.

use std::fmt;

/// The group that holds every condition and init when `series.groups` is not given.
pub const DEFAULT_GROUP: &str = "_";

/// `{name}_{conditionKey}_{seed:04}`: the KEY of a run's outputs in the manifest.
pub fn run_key(series: &str, condition: &str, seed: u32) -> String {
    format!("{series}_{condition}_{seed:04}")
}

/// The series name for group `_`, else `{name}_{group}`.
pub fn group_key(series: &str, group: &str) -> String {
    if group == DEFAULT_GROUP {
        series.to_string()
    } else {
        format!("{series}_{group}")
    }
}

/// AWS Batch's largest array job; a group with more inputs is split into several jobs.
pub const MAX_ARRAY_SIZE: usize = 10_000;

/// `FILE_SET_NAME` of the `part`-th job of a group: the group key for the first, then
/// `{groupKey}-part{n}`, so each job's children read inputs named after their own file set.
pub fn file_set_name(group_key: &str, part: usize) -> String {
    if part == 0 {
        group_key.to_string()
    } else {
        format!("{group_key}-part{part}")
    }
}

/// Job (and job definition) name: `{user}_{fileSetName}`, or the file set name without a user.
pub fn job_name(user: Option<&str>, file_set_name: &str) -> String {
    match user {
        Some(user) => format!("{user}_{file_set_name}"),
        None => file_set_name.to_string(),
    }
}

/// Checks that `key` stays below the location it is read from: relative, `/`-separated, no
/// empty, `.` or `..` part, no `\\` and no control character. Returns why it does not.
pub fn check_relative_key(key: &str) -> Result<(), &'static str> {
    if key.is_empty() {
        return Err("is empty");
    }
    if key.starts_with('/') {
        return Err("is absolute; give a key relative to its location");
    }
    if key.contains('\\') || key.chars().any(char::is_control) {
        return Err("may not contain `\\` or control characters");
    }
    if key
        .trim_end_matches('/')
        .split('/')
        .any(|part| part.is_empty() || part == "." || part == "..")
    {
        return Err("may not contain empty, `.` or `..` parts; it must stay inside its location");
    }
    Ok(())
}

/// `{name}/`: everything of a series in the working location (its outputs are listed below it).
pub fn series_prefix(series: &str) -> String {
    format!("{series}/")
}

/// `{name}/simseries/status.json`: the status file of `simseries run`.
pub fn status_file(series: &str) -> String {
    format!("{series}/simseries/status.json")
}

/// `{name}/simseries/run.lock`: the lock one `simseries run` holds.
pub fn run_lock(series: &str) -> String {
    format!("{series}/simseries/run.lock")
}

/// `{init}/inits/`: the init files of an init in the working location.
pub fn init_prefix(init_name: &str) -> String {
    format!("{init_name}/inits/")
}

/// `{init}/inits/inits.{MODEL}/{init}_{key}.{ext}`: an init file in the working location.
pub fn init_source(init_name: &str, model: &str, init_key: &str, extension: &str) -> String {
    format!(
        "{init_name}/inits/inits.{}/{init_name}_{init_key}.{extension}",
        model.to_uppercase()
    )
}

/// The folder of one submission date, `{name}/{date}/`, and the keys inside it.
#[derive(Clone, Debug, PartialEq, Eq)]
pub struct DatedFolder {
    series: String,
    date: Date,
}

impl DatedFolder {
    pub fn new(series: &str, date: Date) -> Self {
        DatedFolder {
            series: series.to_string(),
            date,
        }
    }

    pub fn date(&self) -> Date {
        self.date
    }

    /// `{name}/{date}/`, with the trailing slash the model images expect.
    pub fn root(&self) -> String {
        format!("{}/{}/", self.series, self.date)
    }

    /// `{name}/{date}/inputs/{fileSetName}_{index}.xml`.
    pub fn input(&self, file_set_name: &str, index: usize) -> String {
        format!("{}inputs/{file_set_name}_{index}.xml", self.root())
    }

    /// `{name}/{date}/inits/{groupKey}_{seed:04}.{ext}`.
    pub fn init_target(&self, group_key: &str, seed: u32, extension: &str) -> String {
        format!("{}inits/{group_key}_{seed:04}.{extension}", self.root())
    }

    /// `{name}/{date}/outputs/`.
    pub fn outputs(&self) -> String {
        format!("{}outputs/", self.root())
    }

    /// `{name}/{date}/logs/`.
    pub fn logs(&self) -> String {
        format!("{}logs/", self.root())
    }

    /// `{name}/{date}/logs/pass-{n}/`: the logs of one pass (a later pass on the same date
    /// reuses input names, but never overwrites earlier logs).
    pub fn pass_logs(&self, pass: u32) -> String {
        format!("{}pass-{pass}/", self.logs())
    }

    /// `{name}/{date}/logs/pass-{n}/{fileSetName}_{index}.log`: safe on every filesystem and S3.
    pub fn log(&self, pass: u32, file_set_name: &str, index: usize) -> String {
        format!("{}{file_set_name}_{index}.log", self.pass_logs(pass))
    }

    /// `{name}/{date}/simseries/`: simseries' own files of the pass (records, local job
    /// scaffolding).
    pub fn scaffolding(&self) -> String {
        format!("{}simseries/", self.root())
    }

    /// `{name}/{date}/simseries/pass-{n}/children/`: the files of the local children of a
    /// pass (output, exit code, process group).
    pub fn children(&self, pass: u32) -> String {
        format!("{}pass-{pass}/children/", self.scaffolding())
    }

    /// `{name}/{date}/simseries/pass-{n}/jobs/{fileSetName}.json`: what a Kubernetes Job said
    /// of its children, kept when the Job is deleted (the pass record is written after).
    pub fn job_children(&self, pass: u32, file_set_name: &str) -> String {
        format!(
            "{}pass-{pass}/jobs/{file_set_name}.json",
            self.scaffolding()
        )
    }

    /// `{name}/{date}/simseries/pass-{n}.json`: the per-child record of a pass.
    pub fn pass_record(&self, pass: u32) -> String {
        format!("{}simseries/pass-{pass}.json", self.root())
    }
}

/// A UTC calendar date, printed `YYYY-MM-DD`.
#[derive(Clone, Copy, Debug, PartialEq, Eq, PartialOrd, Ord)]
pub struct Date(k8s_openapi::jiff::civil::Date);

impl Date {
    /// Today in UTC: the date of a submission.
    pub fn today_utc() -> Date {
        Date(
            k8s_openapi::jiff::Timestamp::now()
                .to_zoned(k8s_openapi::jiff::tz::TimeZone::UTC)
                .date(),
        )
    }
}

impl serde::Serialize for Date {
    fn serialize<S: serde::Serializer>(&self, serializer: S) -> Result<S::Ok, S::Error> {
        serializer.collect_str(self)
    }
}

impl<'de> serde::Deserialize<'de> for Date {
    fn deserialize<D: serde::Deserializer<'de>>(deserializer: D) -> Result<Self, D::Error> {
        let text = String::deserialize(deserializer)?;
        text.parse().map_err(serde::de::Error::custom)
    }
}

impl std::str::FromStr for Date {
    type Err = String;

    fn from_str(s: &str) -> Result<Self, Self::Err> {
        let valid_shape = s.len() == 10
            && s.bytes().enumerate().all(|(i, b)| {
                if i == 4 || i == 7 {
                    b == b'-'
                } else {
                    b.is_ascii_digit()
                }
            });
        if !valid_shape {
            return Err(format!("{s:?} is not a date of the form YYYY-MM-DD"));
        }
        s.parse::<k8s_openapi::jiff::civil::Date>()
            .map(Date)
            .map_err(|e| format!("{s:?} is not a valid date: {e}"))
    }
}

impl fmt::Display for Date {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        write!(f, "{}", self.0.strftime("%Y-%m-%d"))
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn names_follow_the_contract() {
        assert_eq!(run_key("S", "C_1", 7), "S_C_1_0007");
        assert_eq!(run_key("S", "C", 9999), "S_C_9999");
        assert_eq!(group_key("S", "_"), "S");
        assert_eq!(group_key("S", "A"), "S_A");
        assert_eq!(
            init_source("INIT", "PhysiCell", "CSV", "csv"),
            "INIT/inits/inits.PHYSICELL/INIT_CSV.csv"
        );
        let folder = DatedFolder::new("S", "2024-03-05".parse().unwrap());
        assert_eq!(folder.root(), "S/2024-03-05/");
        assert_eq!(folder.input("S_A", 12), "S/2024-03-05/inputs/S_A_12.xml");
        assert_eq!(
            folder.init_target("S_A", 3, "CELLS.json"),
            "S/2024-03-05/inits/S_A_0003.CELLS.json"
        );
        assert_eq!(folder.outputs(), "S/2024-03-05/outputs/");
        assert_eq!(folder.logs(), "S/2024-03-05/logs/");
        assert_eq!(
            folder.log(2, "S_A-part1", 7),
            "S/2024-03-05/logs/pass-2/S_A-part1_7.log"
        );
        assert_eq!(folder.pass_record(3), "S/2024-03-05/simseries/pass-3.json");
        assert_eq!(file_set_name("S_A", 0), "S_A");
        assert_eq!(file_set_name("S_A", 2), "S_A-part2");
        assert_eq!(job_name(Some("alice"), "S_A"), "alice_S_A");
        assert_eq!(job_name(None, "S_A"), "S_A");
    }

    #[test]
    fn keys_stay_inside_their_location() {
        for good in ["template.xml", "a/b/c.csv", "S/", "x..y"] {
            assert_eq!(check_relative_key(good), Ok(()), "{good}");
        }
        for bad in [
            "",
            "/etc/passwd",
            "../x",
            "a/../../b",
            "a//b",
            "./a",
            "a\\b",
            "a\nb",
            "..",
        ] {
            assert!(check_relative_key(bad).is_err(), "{bad:?}");
        }
    }

    #[test]
    fn dates_are_strict() {
        assert_eq!(
            "2024-01-31".parse::<Date>().unwrap().to_string(),
            "2024-01-31"
        );
        for bad in ["2024-1-31", "2024-02-30", "24-01-01", "2024/01/01", "today"] {
            assert!(bad.parse::<Date>().is_err(), "{bad}");
        }
        assert_eq!(Date::today_utc().to_string().len(), 10);
    }
}
