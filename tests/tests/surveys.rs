//! Issue 17 against a real server on 127.0.0.1: needs surveys (一人一表, ADR 0022). Two
//! phones fill the same survey offline for different persons and both responses count on
//! every phone; two phones that fill it for the same person raise a conflict, settled by
//! keeping one; a worker of another caseload holds the survey but not the answers; erasing
//! the household takes its responses and counts from every replica.
#![allow(clippy::unwrap_used)]

use doorstep_core::protocol::ErasureReason;
use doorstep_core::*;
use doorstep_server::store::ServerStore;
use doorstep_tests::*;

fn doc_id(uuid: &uuid::Uuid) -> HouseholdId {
    HouseholdId::from_uuid(*uuid)
}

fn questions() -> Vec<Question> {
    let opt = |c: &str, l: &str| SurveyOption {
        code: c.into(),
        label: l.into(),
    };
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
                options: vec![
                    opt("meals", "助餐"),
                    opt("medical", "助医"),
                    opt("chat", "陪伴"),
                ],
            },
        },
        Question {
            id: "mood".into(),
            label: "最近心情".into(),
            kind: QuestionKind::Scale { min: 1, max: 5 },
        },
        Question {
            id: "words".into(),
            label: "想对社工说的话".into(),
            kind: QuestionKind::Text,
        },
    ]
}

fn answers(living: &str, needs: &[&str], mood: i64) -> Vec<Answer> {
    vec![
        Answer {
            question: "living".into(),
            value: AnswerValue::Choice(living.into()),
        },
        Answer {
            question: "needs".into(),
            value: AnswerValue::Choices(needs.iter().map(|s| s.to_string()).collect()),
        },
        Answer {
            question: "mood".into(),
            value: AnswerValue::Scale(mood),
        },
        Answer {
            question: "words".into(),
            value: AnswerValue::Text("儿子在外打工，想他".into()),
        },
    ]
}

fn count(counts: &[AnswerCount], q: &str, o: &str) -> u32 {
    counts
        .iter()
        .filter(|c| c.question == q && c.option.as_deref() == Some(o))
        .map(|c| c.count)
        .sum()
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn two_phones_fill_the_same_survey_for_different_people() {
    let server = TestServer::start().await;
    let station = server.station("石桥镇社工站");
    let url = server.url();
    let a = server.device(station, "W01", &url).await;
    let b = server.device(station, "W02", &url).await;
    let elsewhere = server
        .device_as(station, "W03", Role::Worker, Some("south"))
        .await;

    let survey = a
        .store
        .create_survey("高龄独居老人需求调查", &questions())
        .unwrap();
    let hh = a.new_household("HH-000301");
    let grandma = a
        .store
        .add_person(hh, &NewPerson::named("李奶奶", "户主"))
        .unwrap();
    let grandpa = a
        .store
        .add_person(hh, &NewPerson::named("李爷爷", "配偶"))
        .unwrap();
    a.sync().await;
    b.sync().await;
    elsewhere.sync().await;
    let v1 = b.store.survey(survey).unwrap().versions[0].id;
    assert_eq!(
        elsewhere.store.survey(survey).unwrap().title,
        "高龄独居老人需求调查"
    );

    // Offline: A asks the grandmother, B the grandfather.
    a.store
        .respond_to_survey(
            hh,
            grandma,
            survey,
            v1,
            &answers("spouse", &["medical", "chat"], 2),
        )
        .unwrap();
    b.store
        .respond_to_survey(hh, grandpa, survey, v1, &answers("spouse", &["medical"], 4))
        .unwrap();
    a.sync().await;
    b.sync().await;
    a.sync().await;
    assert_converged(&[&a, &b]);
    for d in [&a, &b] {
        let counts = d.store.survey_counts(survey).unwrap();
        assert_eq!(count(&counts, "living", "spouse"), 2, "{}", d.label);
        assert_eq!(count(&counts, "needs", "medical"), 2);
        assert_eq!(count(&counts, "needs", "chat"), 1);
        assert_eq!(count(&counts, "mood", "2") + count(&counts, "mood", "4"), 2);
        assert_eq!(d.store.respondents(survey).unwrap().len(), 2);
        assert!(d.store.conflicts(Some(hh)).unwrap().is_empty());
    }

    // Need-to-know: a worker of another caseload holds the survey, not the answers.
    elsewhere.sync().await;
    assert!(elsewhere.store.survey_counts(survey).unwrap().is_empty());
    assert!(elsewhere.store.household(hh).is_err());
    // The survey's document never holds a person or a household (server copy).
    let stored = server
        .store
        .load_document(doc_id(survey.as_uuid()))
        .unwrap()
        .unwrap();
    let doc = doorstep_server::snapshot::load_stored(&stored).unwrap();
    for change in doc.get_changes(&[]) {
        let ops = format!("{:?}", change.decode().operations);
        for id in [grandma.to_string(), grandpa.to_string(), hh.to_string()] {
            assert!(!ops.contains(&id), "a survey never names a person");
        }
    }

    // Both phones fill it again for the grandmother, offline: a conflict, not an overwrite.
    let second = a
        .store
        .add_person(hh, &NewPerson::named("李小花", "孙女"))
        .unwrap();
    a.sync().await;
    b.sync().await;
    let ra = a
        .store
        .respond_to_survey(hh, second, survey, v1, &answers("spouse", &["meals"], 5))
        .unwrap();
    let rb = b
        .store
        .respond_to_survey(hh, second, survey, v1, &answers("alone", &["chat"], 3))
        .unwrap();
    a.sync().await;
    b.sync().await;
    a.sync().await;
    assert_converged(&[&a, &b]);
    let conflict = {
        let mut found = a.store.conflicts(Some(hh)).unwrap();
        assert_eq!(found.len(), 1, "{found:?}");
        found.remove(0)
    };
    assert_eq!(conflict.kind, ConflictKind::DuplicateResponse);
    assert_eq!(b.store.conflicts(Some(hh)).unwrap().len(), 1);
    a.store
        .resolve_conflict(hh, &conflict.field, Some(&ra.to_string()))
        .unwrap();
    a.sync().await;
    b.sync().await;
    assert_converged(&[&a, &b]);
    for d in [&a, &b] {
        assert!(
            d.store.conflicts(Some(hh)).unwrap().is_empty(),
            "{}",
            d.label
        );
        assert_eq!(
            d.store.survey_response(hh, rb).unwrap().status,
            ResponseStatus::Withdrawn
        );
        assert_eq!(
            count(&d.store.survey_counts(survey).unwrap(), "needs", "meals"),
            1
        );
        assert_eq!(d.store.respondents(survey).unwrap().len(), 3);
    }

    // A new version: the old responses keep theirs; a response to it is counted under it.
    let mut qs = questions();
    qs.push(Question {
        id: "meals_a_day".into(),
        label: "每天吃几顿热饭".into(),
        kind: QuestionKind::Number {
            min: Some(0),
            max: Some(5),
        },
    });
    let v2 = b.store.publish_survey_version(survey, &qs).unwrap();
    b.sync().await;
    a.sync().await;
    let read = a.store.survey(survey).unwrap();
    assert_eq!(read.versions.len(), 2);
    assert_eq!(read.latest().unwrap().id, v2);

    // Erasing the household takes every response and count from every replica.
    server.erase(station, hh, ErasureReason::SubjectRequest);
    a.sync().await;
    b.sync().await;
    for d in [&a, &b] {
        assert!(
            d.store.survey_counts(survey).unwrap().is_empty(),
            "{}",
            d.label
        );
        assert!(d.store.respondents(survey).unwrap().is_empty());
        assert_eq!(d.store.survey(survey).unwrap().versions.len(), 2);
    }
    assert_converged(&[&a, &b]);
}

/// A published version is frozen on the server: a push that rewrites its questions is
/// refused as invalid; a push that adds a version is accepted.
#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn a_published_survey_version_cannot_be_rewritten() {
    use automerge::transaction::Transactable;
    use automerge::{ReadDoc, ROOT};
    use doorstep_core::protocol::{DocErrorCode, SyncRequest, SyncResponse};
    use doorstep_core::transport::enroll;
    use doorstep_server::store::DeviceAuth;
    use doorstep_tests::raw_device::RawDevice;

    async fn post(server: &TestServer, token: &str, req: &SyncRequest) -> SyncResponse {
        let resp = reqwest::Client::new()
            .post(format!("{}/v1/sync", server.url()))
            .bearer_auth(token)
            .body(req.encode())
            .send()
            .await
            .unwrap();
        assert_eq!(resp.status().as_u16(), 200);
        SyncResponse::decode(&resp.bytes().await.unwrap()).unwrap()
    }

    let server = TestServer::start().await;
    let station = server.station("石桥镇社工站");
    let code = server.enrolment_code(station, "RAW");
    let e = enroll(&server.url(), &code).await.unwrap();
    let raw = RawDevice::new(
        DeviceAuth {
            device: e.device,
            worker: e.worker,
            station: e.station,
            revoked: false,
        },
        0x21,
    );
    let survey = raw.store.create_survey("需求调查", &questions()).unwrap();
    let id = doc_id(survey.as_uuid());
    let mut doc = raw.document(id);
    let first = doc.get_changes(&[]);
    let resp = post(&server, &e.token, &raw.request(id, &first)).await;
    assert!(resp.errors.is_empty(), "{:?}", resp.errors);

    // A second version through the store: accepted.
    raw.store
        .publish_survey_version(survey, &questions())
        .unwrap();
    let doc2 = raw.document(id);
    let added = doc2.get_changes(&doc.get_heads());
    let resp = post(&server, &e.token, &raw.request(id, &added)).await;
    assert!(resp.errors.is_empty(), "{:?}", resp.errors);
    doc = doc2.fork();

    // Rewriting version 1's questions: refused.
    let before = doc.get_heads();
    let v1 = raw.store.survey(survey).unwrap().versions[0].id.to_string();
    doc.transact(|tx| {
        let s = tx.get(ROOT, "survey")?.unwrap().1;
        let vs = tx.get(&s, "versions")?.unwrap().1;
        let v = tx.get(&vs, v1.as_str())?.unwrap().1;
        tx.put(
            &v,
            "questions",
            r#"[{"id":"x","label":"改过的问题","type":"text"}]"#,
        )?;
        Ok::<_, automerge::AutomergeError>(())
    })
    .unwrap();
    let forged = doc.get_changes(&before);
    let resp = post(&server, &e.token, &raw.request(id, &forged)).await;
    assert_eq!(resp.errors.len(), 1, "{resp:?}");
    assert_eq!(resp.errors[0].code, DocErrorCode::Invalid);
}
