//! Needs surveys on the device (issue 17, ADR 0022): a survey is station work (its own
//! document, held by every worker and supervisor of the station); a response is a record of
//! the person's household; answers are counted from the index.

use super::*;
use crate::doc::survey;
use crate::model::station_work::WorkKind;
use crate::model::survey::*;

fn doc_id(uuid: &Uuid) -> HouseholdId {
    HouseholdId::from_uuid(*uuid)
}

type CountRow = (String, String, String, u32, Option<i64>);

impl Store {
    /// Define a new survey with its first version (number 1).
    pub fn create_survey(&self, title: &str, questions: &[Question]) -> Result<SurveyId> {
        let id = SurveyId::new();
        let version = SurveyVersionId::new();
        self.create_work(doc_id(id.as_uuid()), WorkKind::Survey, |tx, p| {
            survey::create_survey(tx, id, version, self.station, title, questions, p)
        })?;
        Ok(id)
    }

    /// Publish a new version of a survey: a new, frozen entry; the versions before it stay
    /// readable and the responses to them keep the version they answered.
    pub fn publish_survey_version(
        &self,
        id: SurveyId,
        questions: &[Question],
    ) -> Result<SurveyVersionId> {
        let version = SurveyVersionId::new();
        self.act_on_work(doc_id(id.as_uuid()), WorkKind::Survey, |tx, p| {
            survey::publish_version(tx, version, questions, p)
        })?;
        Ok(version)
    }

    pub fn rename_survey(&self, id: SurveyId, title: &str) -> Result<()> {
        self.act_on_work(doc_id(id.as_uuid()), WorkKind::Survey, |tx, p| {
            survey::set_title(tx, title, p)
        })
    }

    /// The survey with every version.
    pub fn survey(&self, id: SurveyId) -> Result<Survey> {
        self.require_kind(doc_id(id.as_uuid()), WorkKind::Survey)?;
        self.read(doc_id(id.as_uuid()), survey::read_survey)
    }

    /// The surveys this device holds, by title (from the index).
    pub fn surveys(&self) -> Result<Vec<SurveySummary>> {
        self.with_reader(|c| {
            let rows = c
                .prepare_cached(
                    "SELECT doorstep_id(survey_id), title, versions FROM ix_surveys
                     ORDER BY title, survey_id",
                )?
                .query_map([], |r| Ok((r.get::<_, String>(0)?, r.get(1)?, r.get(2)?)))?
                .collect::<std::result::Result<Vec<(String, String, u32)>, _>>()?;
            rows.into_iter()
                .map(|(id, title, versions)| {
                    Ok(SurveySummary {
                        id: SurveyId::parse(&id).map_err(|_| Error::Damaged)?,
                        title,
                        versions,
                    })
                })
                .collect()
        })
    }

    /// Record a person's answers to one version of a survey. The answers are checked against
    /// that version; a person answers a survey once (edit the response instead). Two phones
    /// that both record one offline make a `DuplicateResponse` conflict.
    pub fn respond_to_survey(
        &self,
        household: HouseholdId,
        person: PersonId,
        survey_id: SurveyId,
        version: SurveyVersionId,
        answers: &[Answer],
    ) -> Result<ResponseId> {
        let answers = self.checked_answers(survey_id, version, answers)?;
        let id = ResponseId::new();
        // The whole household is reindexed: the one-response rule spans its records.
        self.act(household, Scope::Household, |tx, p| {
            survey::add_response(tx, id, person, survey_id, version, &answers, p)
        })?;
        Ok(id)
    }

    /// Replace a response's answers (checked against the version it answered).
    pub fn edit_survey_response(
        &self,
        household: HouseholdId,
        response: ResponseId,
        answers: &[Answer],
    ) -> Result<()> {
        let current = self.survey_response(household, response)?;
        let answers = self.checked_answers(current.survey, current.version, answers)?;
        self.act(household, Scope::Household, |tx, p| {
            survey::edit_response(tx, response, &answers, p)
        })
    }

    /// Withdraw a response: kept in the case file, no longer counted.
    pub fn withdraw_survey_response(
        &self,
        household: HouseholdId,
        response: ResponseId,
    ) -> Result<()> {
        self.act(household, Scope::Household, |tx, p| {
            survey::withdraw_response(tx, response, p)
        })
    }

    pub fn survey_response(
        &self,
        household: HouseholdId,
        response: ResponseId,
    ) -> Result<SurveyResponse> {
        self.read(household, |doc| {
            let obj = crate::doc::cells::entity_obj(
                doc,
                EntityKind::Response,
                Some(&response.to_string()),
            )?
            .ok_or(Error::NotFound("response"))?;
            survey::read_response(doc, &response.to_string(), &obj)
        })
    }

    fn checked_answers(
        &self,
        survey_id: SurveyId,
        version: SurveyVersionId,
        answers: &[Answer],
    ) -> Result<Vec<Answer>> {
        let s = self.survey(survey_id)?;
        let v = s
            .version(version)
            .ok_or(Error::NotFound("survey version"))?;
        check_answers(v, answers)
    }

    /// The persons of households this device holds who answered (submitted or withdrawn:
    /// see the response's status).
    pub fn respondents(&self, survey_id: SurveyId) -> Result<Vec<Respondent>> {
        self.with_reader(|c| {
            let rows = c
                .prepare_cached(
                    "SELECT doorstep_id(household_id), doorstep_id(person_id), doorstep_id(response_id)
                     FROM ix_responses WHERE survey_id = doorstep_key(?1) AND status = 'submitted'
                     ORDER BY household_id, person_id, response_id",
                )?
                .query_map([survey_id.to_string()], |r| {
                    Ok((
                        r.get::<_, String>(0)?,
                        r.get::<_, String>(1)?,
                        r.get::<_, String>(2)?,
                    ))
                })?
                .collect::<std::result::Result<Vec<_>, _>>()?;
            rows.into_iter()
                .map(|(h, p, r)| {
                    Ok(Respondent {
                        household: HouseholdId::parse(&h).map_err(|_| Error::Damaged)?,
                        person: PersonId::parse(&p).map_err(|_| Error::Damaged)?,
                        response: ResponseId::parse(&r).map_err(|_| Error::Damaged)?,
                    })
                })
                .collect()
        })
    }

    /// How many submitted responses this device holds gave each answer, per version,
    /// question and option (the index: no document is loaded). A worker counts their
    /// caseload's responses; a supervisor's phone the station's.
    pub fn survey_counts(&self, survey_id: SurveyId) -> Result<Vec<AnswerCount>> {
        self.with_reader(|c| {
            let rows = c
                .prepare_cached(
                    "SELECT doorstep_id(version_id), question, option, COUNT(*), SUM(number)
                     FROM ix_survey_answers WHERE survey_id = doorstep_key(?1)
                     GROUP BY version_id, question, option
                     ORDER BY version_id, question, option",
                )?
                .query_map([survey_id.to_string()], |r| {
                    Ok((r.get(0)?, r.get(1)?, r.get(2)?, r.get(3)?, r.get(4)?))
                })?
                .collect::<std::result::Result<Vec<CountRow>, _>>()?;
            rows.into_iter()
                .map(|(v, question, option, count, sum)| {
                    Ok(AnswerCount {
                        version: SurveyVersionId::parse(&v).map_err(|_| Error::Damaged)?,
                        question,
                        option: (!option.is_empty()).then_some(option),
                        count,
                        sum,
                    })
                })
                .collect()
        })
    }
}

#[cfg(test)]
mod tests {
    use super::*;
    use crate::model::policy::{fields_of, MergePolicy};

    fn store(dir: &tempfile::TempDir, name: &str, station: StationId) -> Store {
        Store::open(StoreOptions::new(
            dir.path().join(name),
            StoreKey::Raw([7; 32]),
            WorkerId::new(),
            station,
        ))
        .unwrap()
    }

    fn send(from: &Store, to: &Store, id: HouseholdId) {
        let have = to.heads(id).unwrap_or_default();
        let changes = from.export_changes(id, &have).unwrap();
        to.apply_changes(id, &changes).unwrap();
    }

    fn opt(c: &str, l: &str) -> SurveyOption {
        SurveyOption {
            code: c.into(),
            label: l.into(),
        }
    }

    fn questions() -> Vec<Question> {
        vec![
            Question {
                id: "living".into(),
                label: "居住情况".into(),
                kind: QuestionKind::Single {
                    options: vec![opt("alone", "独居"), opt("spouse", "与配偶同住")],
                },
            },
            Question {
                id: "needs".into(),
                label: "需要哪些服务".into(),
                kind: QuestionKind::Multiple {
                    options: vec![opt("meals", "助餐"), opt("medical", "助医")],
                },
            },
            Question {
                id: "mood".into(),
                label: "心情".into(),
                kind: QuestionKind::Scale { min: 1, max: 5 },
            },
            Question {
                id: "words".into(),
                label: "想说的话".into(),
                kind: QuestionKind::Text,
            },
        ]
    }

    fn answers(living: &str, mood: i64) -> Vec<Answer> {
        vec![
            Answer {
                question: "living".into(),
                value: AnswerValue::Choice(living.into()),
            },
            Answer {
                question: "needs".into(),
                value: AnswerValue::Choices(vec!["meals".into(), "medical".into()]),
            },
            Answer {
                question: "mood".into(),
                value: AnswerValue::Scale(mood),
            },
            Answer {
                question: "words".into(),
                value: AnswerValue::Text("希望有人陪着说说话".into()),
            },
        ]
    }

    fn household_with_elder(s: &Store) -> (HouseholdId, PersonId) {
        let hh = s
            .create_household(&NewHousehold {
                code: "HH-9".into(),
                ..Default::default()
            })
            .unwrap();
        let p = s.add_person(hh, &NewPerson::named("老人", "户主")).unwrap();
        (hh, p)
    }

    fn count(counts: &[AnswerCount], q: &str, o: Option<&str>) -> u32 {
        counts
            .iter()
            .filter(|c| c.question == q && c.option.as_deref() == o)
            .map(|c| c.count)
            .sum()
    }

    #[test]
    fn survey_and_response_fields_have_their_declared_policies() {
        let policy = |kind, name: &str| {
            fields_of(kind)
                .find(|f| f.name == name)
                .map(|f| f.policy)
                .unwrap()
        };
        assert_eq!(
            policy(EntityKind::Survey, "title"),
            MergePolicy::LastWriterWins
        );
        assert_eq!(policy(EntityKind::Response, "person"), MergePolicy::Fixed);
        assert_eq!(policy(EntityKind::Response, "version"), MergePolicy::Fixed);
        assert_eq!(
            policy(EntityKind::Response, "answers"),
            MergePolicy::LastWriterWins
        );
        assert_eq!(policy(EntityKind::Response, "status"), MergePolicy::Status);
    }

    #[test]
    fn responses_keep_their_version_and_are_counted_per_question_and_option() {
        let dir = tempfile::tempdir().unwrap();
        let a = store(&dir, "a.db", StationId::new());
        let sid = a
            .create_survey("高龄独居老人需求调查", &questions())
            .unwrap();
        let v1 = a.survey(sid).unwrap().versions[0].id;
        let (hh, p1) = household_with_elder(&a);
        let p2 = a.add_person(hh, &NewPerson::named("老伴", "配偶")).unwrap();
        let r1 = a
            .respond_to_survey(hh, p1, sid, v1, &answers("alone", 2))
            .unwrap();
        // Version 2 adds a number question; the first response keeps version 1.
        let mut qs = questions();
        qs.push(Question {
            id: "meals".into(),
            label: "每天吃几顿热饭".into(),
            kind: QuestionKind::Number {
                min: Some(0),
                max: Some(5),
            },
        });
        let v2 = a.publish_survey_version(sid, &qs).unwrap();
        let s = a.survey(sid).unwrap();
        assert_eq!(
            s.versions.iter().map(|v| v.number).collect::<Vec<_>>(),
            [1, 2]
        );
        assert_eq!(
            s.versions[0].questions,
            check_questions(&questions()).unwrap()
        );
        let mut second = answers("spouse", 4);
        second.push(Answer {
            question: "meals".into(),
            value: AnswerValue::Number(2),
        });
        a.respond_to_survey(hh, p2, sid, v2, &second).unwrap();
        assert!(matches!(
            a.respond_to_survey(hh, p1, sid, v2, &second),
            Err(Error::InvalidInput(_))
        ));
        assert!(
            matches!(
                a.respond_to_survey(hh, p1, sid, v1, &second),
                Err(Error::InvalidInput(_))
            ),
            "version 1 has no question 'meals'"
        );
        assert_eq!(a.survey_response(hh, r1).unwrap().version, v1);
        let counts = a.survey_counts(sid).unwrap();
        assert_eq!(count(&counts, "living", Some("alone")), 1);
        assert_eq!(count(&counts, "living", Some("spouse")), 1);
        assert_eq!(count(&counts, "needs", Some("meals")), 2);
        assert_eq!(count(&counts, "words", None), 2);
        let meals = counts.iter().find(|c| c.question == "meals").unwrap();
        assert_eq!((meals.version, meals.count, meals.sum), (v2, 1, Some(2)));
        assert_eq!(a.respondents(sid).unwrap().len(), 2);
        // A withdrawn response is kept and no longer counted; the index equals a rebuild.
        a.withdraw_survey_response(hh, r1).unwrap();
        assert_eq!(
            count(&a.survey_counts(sid).unwrap(), "living", Some("alone")),
            0
        );
        assert_eq!(a.household(hh).unwrap().responses.len(), 2);
        let before = a.index_dump().unwrap();
        a.rebuild_index().unwrap();
        assert_eq!(a.index_dump().unwrap(), before);
        assert_eq!(a.surveys().unwrap()[0].versions, 2);
    }

    #[test]
    fn two_phones_answering_for_one_person_make_a_conflict_settled_by_keeping_one() {
        let dir = tempfile::tempdir().unwrap();
        let station = StationId::new();
        let (a, b) = (store(&dir, "a.db", station), store(&dir, "b.db", station));
        let sid = a.create_survey("需求调查", &questions()).unwrap();
        let sdoc = HouseholdId::from_uuid(*sid.as_uuid());
        let (hh, p) = household_with_elder(&a);
        send(&a, &b, sdoc);
        send(&a, &b, hh);
        let v1 = b.survey(sid).unwrap().versions[0].id;
        let ra = a
            .respond_to_survey(hh, p, sid, v1, &answers("alone", 2))
            .unwrap();
        let rb = b
            .respond_to_survey(hh, p, sid, v1, &answers("spouse", 3))
            .unwrap();
        send(&a, &b, hh);
        send(&b, &a, hh);
        for s in [&a, &b] {
            let conflicts = s.conflicts(Some(hh)).unwrap();
            assert_eq!(
                conflicts.len(),
                1,
                "a duplicate is surfaced, not overwritten"
            );
            assert_eq!(conflicts[0].kind, ConflictKind::DuplicateResponse);
            let ids: Vec<_> = conflicts[0]
                .values
                .iter()
                .map(|v| v.value.clone())
                .collect();
            assert!(ids.contains(&Some(ra.to_string())) && ids.contains(&Some(rb.to_string())));
        }
        assert_eq!(a.index_dump().unwrap(), b.index_dump().unwrap());
        let c = a.conflicts(Some(hh)).unwrap().remove(0);
        assert!(a
            .resolve_conflict(hh, &c.field, Some("not-a-response"))
            .is_err());
        a.resolve_conflict(hh, &c.field, Some(&rb.to_string()))
            .unwrap();
        assert!(a.conflicts(Some(hh)).unwrap().is_empty());
        assert_eq!(
            a.survey_response(hh, ra).unwrap().status,
            ResponseStatus::Withdrawn
        );
        let counts = a.survey_counts(sid).unwrap();
        assert_eq!(count(&counts, "living", Some("spouse")), 1);
        assert_eq!(count(&counts, "living", Some("alone")), 0);
        send(&a, &b, hh);
        assert!(b.conflicts(Some(hh)).unwrap().is_empty());
        assert_eq!(a.index_dump().unwrap(), b.index_dump().unwrap());
    }

    #[test]
    fn a_published_version_is_frozen_and_the_validator_reads_surveys() {
        let dir = tempfile::tempdir().unwrap();
        let a = store(&dir, "a.db", StationId::new());
        let sid = a.create_survey("需求调查", &questions()).unwrap();
        let sdoc = HouseholdId::from_uuid(*sid.as_uuid());
        let whole = {
            let mut w = a.writer();
            let Writer { conn, cache, .. } = &mut *w;
            load(conn, cache, sdoc, &a.actor).unwrap().clone()
        };
        crate::doc::verify::validate(&whole).unwrap();
        let frozen = survey::frozen_parts(&whole).unwrap();
        assert_eq!(frozen.len(), 1);
        // A newer version added: fine. A published version's questions rewritten: refused.
        let mut added = whole.fork();
        let mut tx = added.transaction();
        survey::publish_version(
            &mut tx,
            SurveyVersionId::new(),
            &questions(),
            &a.provenance(),
        )
        .unwrap();
        tx.commit();
        survey::check_frozen(&frozen, &added).unwrap();
        let mut rewritten = whole.fork();
        let mut tx = rewritten.transaction();
        let s = crate::doc::cells::entity_obj(&tx, EntityKind::Survey, None)
            .unwrap()
            .unwrap();
        let versions = crate::doc::cells::get_map(&tx, &s, "versions")
            .unwrap()
            .unwrap();
        let key = automerge::ReadDoc::keys(&tx, &versions).next().unwrap();
        let v = crate::doc::cells::get_map(&tx, &versions, &key)
            .unwrap()
            .unwrap();
        automerge::transaction::Transactable::put(&mut tx, &v, "questions", "[]").unwrap();
        tx.commit();
        assert!(survey::check_frozen(&frozen, &rewritten).is_err());
        // An unknown question type of a newer app reads, as unknown, and cannot be answered.
        let mut newer = whole.fork();
        let mut tx = newer.transaction();
        let id = SurveyVersionId::new();
        let vs = crate::doc::cells::get_map(&tx, &s, "versions")
            .unwrap()
            .unwrap();
        let v = automerge::transaction::Transactable::put_object(
            &mut tx,
            &vs,
            id.to_string(),
            automerge::ObjType::Map,
        )
        .unwrap();
        automerge::transaction::Transactable::put(&mut tx, &v, "number", 2_i64).unwrap();
        automerge::transaction::Transactable::put(
            &mut tx,
            &v,
            "questions",
            r#"[{"id":"pin","label":"住址","type":"map_pin"}]"#,
        )
        .unwrap();
        let c = automerge::transaction::Transactable::put_object(
            &mut tx,
            &v,
            "created",
            automerge::ObjType::Map,
        )
        .unwrap();
        crate::doc::cells::put_provenance(&mut tx, &c, &a.provenance()).unwrap();
        tx.commit();
        crate::doc::verify::validate(&newer).unwrap();
        let read = survey::read_survey(&newer).unwrap();
        assert_eq!(
            read.version(id).unwrap().questions[0].kind,
            QuestionKind::Unknown {
                name: "map_pin".into()
            }
        );
        // Bad input: clear errors.
        assert!(matches!(
            a.create_survey("  ", &questions()),
            Err(Error::InvalidInput(_))
        ));
        assert!(matches!(
            a.create_survey("x", &[]),
            Err(Error::InvalidInput(_))
        ));
        assert!(matches!(a.survey(SurveyId::new()), Err(Error::NotFound(_))));
    }
}
