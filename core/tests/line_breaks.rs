//! Text pasted with Windows (`\r\n`) or old Mac (`\r`) line endings is saved with `\n` in
//! every free-text field, on a real store file; other control characters are still refused.
#![allow(clippy::unwrap_used)]

mod common;

use common::*;
use doorstep_core::*;

#[test]
fn pasted_line_endings_are_saved_as_newlines_in_every_free_text_field() {
    let dir = tempfile::tempdir().unwrap();
    let s = open(dir.path(), "w.db", StationId::new());
    let hh = s
        .create_household(&NewHousehold {
            code: "HH-000001".into(),
            village: "石桥村".into(),
            address: "一组".into(),
            summary: "祖孙二人。\r\n父母外出。\r奶奶腿脚不便。".into(),
            ..Default::default()
        })
        .unwrap();
    s.splice_summary(hh, 0, 0, "摘要：\r\n").unwrap();
    let v = visit(&s, hh, "2026-11-29");
    s.splice_section(hh, v, Section::Concerns, 0, 0, "𠮷\r\n👵\r\n")
        .unwrap();
    // A position after the paste counts the saved text (one `\n`, not two characters).
    s.splice_section(hh, v, Section::Concerns, 4, 0, "完")
        .unwrap();
    s.add_need(
        hh,
        &NewNeed {
            category: "助学".into(),
            description: "学费\r\n书本".into(),
            person: None,
            visit: Some(v),
        },
    )
    .unwrap();
    let q = s
        .add_inquiry(
            hh,
            &NewInquiry {
                question: "低保\r\n怎么申请？".into(),
                topic: "低保".into(),
                answer: Some("去镇上\r\n社工站".into()),
                visit: Some(v),
            },
        )
        .unwrap();
    s.answer_inquiry(hh, q, "带户口本\r\n身份证").unwrap();
    s.finalise_visit(hh, v).unwrap();
    s.amend_visit(hh, v, Some(Section::Concerns), "更正：\r\n不是腿脚")
        .unwrap();

    let h = s.household(hh).unwrap();
    assert_eq!(h.summary, "摘要：\n祖孙二人。\n父母外出。\n奶奶腿脚不便。");
    let visit = &h.visits[0];
    assert_eq!(visit.section(Section::Concerns), "𠮷\n👵\n完");
    assert_eq!(h.needs[0].description, "学费\n书本");
    assert_eq!(h.inquiries[0].question, "低保\n怎么申请？");
    assert_eq!(h.inquiries[0].answer.as_deref(), Some("带户口本\n身份证"));
    let all = format!("{h:?}");
    assert!(!all.contains('\r'), "no carriage return saved anywhere");
    assert_eq!(h.amendments[0].text, "更正：\n不是腿脚");

    // Other control characters are still refused, with the rule and not the text.
    let e = s.splice_summary(hh, 0, 0, "响铃\u{7}").unwrap_err();
    assert!(matches!(e, Error::InvalidInput(_)), "{e:?}");
    assert!(!e.to_string().contains("响铃"));
}
