//! The pass record: per-child detail of a pass (inputs, runs, outcomes, log keys), kept in the
//! working location at `{name}/{date}/simseries/pass-{n}.json` so the status stays small.

use serde::{Deserialize, Serialize};

use crate::model::outcome::ChildOutcome;

#[derive(Debug, Clone, PartialEq, Serialize, Deserialize)]
#[serde(rename_all = "camelCase")]
pub struct PassRecord {
    pub api_version: String,
    pub kind: String,
    pub series: String,
    pub pass: u32,
    pub generation: i64,
    pub date: String,
    pub groups: Vec<GroupRecord>,
}

#[derive(Debug, Clone, PartialEq, Serialize, Deserialize)]
#[serde(rename_all = "camelCase")]
pub struct GroupRecord {
    pub group: String,
    pub group_key: String,
    pub jobs: Vec<JobDetail>,
}

#[derive(Debug, Clone, PartialEq, Serialize, Deserialize)]
#[serde(rename_all = "camelCase")]
pub struct JobDetail {
    pub name: String,
    pub file_set_name: String,
    #[serde(default, skip_serializing_if = "Option::is_none")]
    pub id: Option<String>,
    pub children: Vec<ChildRecord>,
}

#[derive(Debug, Clone, PartialEq, Serialize, Deserialize)]
#[serde(rename_all = "camelCase")]
pub struct ChildRecord {
    pub index: u32,
    /// Key of the child's input in the working location.
    pub input: String,
    /// Run keys the child covers.
    pub runs: Vec<String>,
    #[serde(default, skip_serializing_if = "Option::is_none")]
    pub outcome: Option<ChildOutcome>,
    /// Key of the saved log in the working location.
    #[serde(default, skip_serializing_if = "Option::is_none")]
    pub log: Option<String>,
}

impl PassRecord {
    pub fn new(series: &str, pass: u32, generation: i64, date: &str) -> Self {
        PassRecord {
            api_version: "simseries.io/v1alpha1".into(),
            kind: "PassRecord".into(),
            series: series.into(),
            pass,
            generation,
            date: date.into(),
            groups: Vec::new(),
        }
    }

    /// Every child of the pass, group by group and job by job.
    pub fn children(&self) -> impl Iterator<Item = &ChildRecord> {
        self.groups
            .iter()
            .flat_map(|g| &g.jobs)
            .flat_map(|j| &j.children)
    }

    /// The run keys of every child of the pass.
    pub fn runs(&self) -> impl Iterator<Item = &str> {
        self.children().flat_map(|c| &c.runs).map(String::as_str)
    }

    /// A record of series `S` on 2024-06-01 with one group `_` of one job holding `children`.
    #[cfg(test)]
    pub fn of_children(pass: u32, children: Vec<ChildRecord>) -> PassRecord {
        let mut record = PassRecord::new("S", pass, 1, "2024-06-01");
        record.groups.push(GroupRecord {
            group: "_".into(),
            group_key: "S".into(),
            jobs: vec![JobDetail {
                name: "j".into(),
                file_set_name: "S".into(),
                id: None,
                children,
            }],
        });
        record
    }

    pub fn job_mut(&mut self, name: &str) -> Option<&mut JobDetail> {
        self.groups
            .iter_mut()
            .flat_map(|g| &mut g.jobs)
            .find(|j| j.name == name)
    }
}
