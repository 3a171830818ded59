//! What the console shows, in words: the two languages, masked ID numbers, short device
//! labels. Dates are in the station's time zone (`crate::station_time`).

use doorstep_core::{DeviceId, WorkerId};

/// The console's languages: Chinese first.
#[derive(Clone, Copy, Debug, PartialEq, Eq)]
pub enum Lang {
    Zh,
    En,
}

impl Lang {
    pub fn from_cookie(v: Option<&str>) -> Lang {
        match v {
            Some("en") => Lang::En,
            _ => Lang::Zh,
        }
    }
    pub fn code(self) -> &'static str {
        match self {
            Lang::Zh => "zh-CN",
            Lang::En => "en",
        }
    }
}

/// An ID number with all but its first 3 and last 4 characters hidden.
pub fn mask_id_number(s: &str) -> String {
    let chars: Vec<char> = s.chars().collect();
    if chars.len() <= 7 {
        return "*".repeat(chars.len());
    }
    chars
        .iter()
        .enumerate()
        .map(|(i, c)| {
            if i < 3 || i + 4 >= chars.len() {
                *c
            } else {
                '*'
            }
        })
        .collect()
}

/// A device as shown: `…` and the last 8 hex digits of its id (the first ones of a v7 id
/// are its time of creation, alike for devices enrolled together).
pub fn device_label(d: DeviceId) -> String {
    let s = d.to_string();
    format!("…{}", &s[s.len().saturating_sub(8)..])
}

/// A worker's label, or a short form of the id for a worker the server does not know.
pub fn worker_label(labels: &[(WorkerId, String)], w: WorkerId) -> String {
    labels
        .iter()
        .find(|(id, _)| *id == w)
        .map(|(_, l)| l.clone())
        .unwrap_or_else(|| {
            let s = w.to_string();
            format!("…{}", &s[s.len().saturating_sub(8)..])
        })
}

/// The words of the console, by key, in one language.
pub fn words(lang: Lang) -> std::collections::BTreeMap<&'static str, &'static str> {
    let zh = lang == Lang::Zh;
    let pairs: &[(&str, &str, &str)] = &[
        ("title", "社工站工作台", "Station console"),
        ("dashboard", "概览", "Dashboard"),
        ("households", "家庭档案", "Households"),
        ("conflicts", "待处理冲突", "Conflicts"),
        ("follow_ups", "待跟进事项", "Follow-ups"),
        ("logout", "退出登录", "Log out"),
        ("login", "登录", "Log in"),
        ("login_name", "账号", "Login"),
        ("password", "密码", "Password"),
        ("other_lang", "English", "中文"),
        ("visits_month", "本月走访", "Visits this month"),
        ("open_needs", "未解决需求", "Open needs"),
        ("overdue", "逾期跟进", "Overdue follow-ups"),
        ("unresolved", "未解决冲突", "Unresolved conflicts"),
        ("household_count", "家庭数", "Households"),
        ("search", "搜索", "Search"),
        (
            "search_hint",
            "姓名、地址、走访记录中的词",
            "A word from names, addresses, notes",
        ),
        ("village", "村", "Village"),
        ("category", "类别", "Category"),
        ("status", "状态", "Status"),
        ("any", "全部", "Any"),
        ("code", "编号", "Code"),
        ("visits", "走访", "Visits"),
        ("last_visit", "最近走访", "Last visit"),
        ("export_csv", "导出 CSV", "Export CSV"),
        ("visits_csv", "走访记录 CSV", "Visits CSV"),
        ("visits_xlsx", "走访记录 XLSX", "Visits XLSX"),
        (
            "no_results",
            "没有符合条件的家庭。",
            "No household matches.",
        ),
        ("profile", "基本信息", "Profile"),
        ("persons", "家庭成员", "Persons"),
        ("field", "字段", "Field"),
        ("value", "值", "Value"),
        ("written_by", "记录人", "Written by"),
        ("device", "设备", "Device"),
        ("when", "时间", "When"),
        ("also", "并行值", "Concurrent value"),
        ("needs", "需求", "Needs"),
        ("inquiries", "咨询", "Inquiries"),
        ("cards", "联系卡", "Cards"),
        ("date", "日期", "Date"),
        ("kind", "方式", "Kind"),
        ("workers", "社工", "Workers"),
        ("summary", "情况概述", "Situation"),
        ("due", "到期", "Due"),
        ("assignee", "负责社工", "Assignee"),
        ("what", "事项", "What"),
        ("household", "家庭", "Household"),
        ("none", "无", "None"),
        ("is_overdue", "已逾期", "overdue"),
        (
            "resolve_hint",
            "选择要保留的值并确认：处理结果以您的名义写入家庭档案，社工手机下次同步时收到。",
            "Choose the value to keep: the decision is written into the case file in your name and reaches the workers' phones at their next sync.",
        ),
        ("choose", "采用", "Keep"),
        ("devices_in_use", "在用设备", "Devices in use"),
        ("leases", "领用（按设备）", "Leases (per device)"),
        ("batches", "印制批次", "Printed batches"),
        ("serials", "编号范围", "Serials"),
        ("expires", "到期", "Expires"),
        ("lease_size", "张数", "Cards"),
        ("cards_left", "剩余", "Left"),
        ("leased", "已领用", "Leased"),
        ("unleased", "库存", "In stock"),
        ("lease_active", "使用中", "active"),
        ("lease_returned", "已归还", "returned"),
        ("lease_expired", "已到期", "expired"),
        ("cards_hint", "同一前缀的批次编号不得重叠；领用范围须在批次内，且不得与该批次未归还的领用重叠；领用在设备下次同步时送达，归还后未发放的卡回到库存。命令行同样可用：doorstep-server cards batch / lease / return（见 docs/cards.md）。", "Batches of one prefix never overlap; a lease lies within its batch and never overlaps a lease of it that is not returned; a phone receives its lease at its next sync, and a returned lease's unissued cards go back to stock. The CLI does the same: doorstep-server cards batch / lease / return (docs/cards.md)."),
        ("add_batch", "登记印制批次", "Register a printed batch"),
        ("prefix", "前缀", "Prefix"),
        ("first_number", "起始编号", "First number"),
        ("last_number", "结束编号", "Last number"),
        ("prefix_hint", "前缀为1至8个英文字母，编号为1至999999，如 HG、1、5000 即 HG-000001 至 HG-005000。", "A prefix of 1 to 8 letters and numbers from 1 to 999999: HG, 1, 5000 is HG-000001 to HG-005000."),
        ("add_lease", "领用给设备", "Lease cards to a phone"),
        ("batch", "批次", "Batch"),
        ("expires_optional", "最后使用日（可不填）", "Last day (optional)"),
        ("return_lease", "归还", "Return"),
        ("no_phones", "本站没有在用的设备：先在“社工与设备”页登记。", "No phone of the station is in use: enrol one on the Workers and devices page."),
        ("no_batches", "先登记印制批次，再领用。", "Register a printed batch first."),
        ("done_batch", "已登记批次。", "Batch registered."),
        ("done_lease", "已领用：设备下次同步时收到。", "Leased: the phone receives it at its next sync."),
        ("done_return", "已归还：未发放的卡回到库存。", "Returned: its unissued cards are back in stock."),
        ("nothing_changed", "未作任何修改。", "Nothing was changed."),
        ("card_err_prefix", "前缀须为1至8个英文字母（如 HG）。", "The prefix is 1 to 8 letters (such as HG)."),
        ("card_err_number", "编号须为1至999999的整数。", "Card numbers are whole numbers from 1 to 999999."),
        ("card_err_reversed", "起始编号不能大于结束编号。", "The first number is after the last."),
        ("card_err_batch_overlap", "与同一前缀的已有批次重叠。", "It overlaps a batch of the same prefix."),
        ("card_err_unknown_batch", "请选择本站的一个批次。", "Choose one of the station's batches."),
        ("card_err_outside_batch", "领用范围须在所选批次的编号范围内。", "The range must lie within the chosen batch."),
        ("card_err_lease_overlap", "与该批次未归还的领用重叠。", "It overlaps a lease of that batch that is not returned."),
        ("card_err_unknown_device", "请选择本站在用的设备。", "Choose a phone of the station that is in use."),
        ("card_err_date", "最后使用日应为日期（YYYY-MM-DD）。", "The last day is a date (YYYY-MM-DD)."),
        ("card_err_past_date", "最后使用日不能早于今天。", "The last day cannot be before today."),
        ("card_err_unknown_lease", "没有这条领用记录。", "No such lease."),
        ("card_err_returned", "该领用已归还。", "That lease was returned already."),
        ("card_err_changed", "联系卡数据刚被修改，请查看后重试。", "The station's cards changed meanwhile: look again and retry."),
        ("devices", "社工与设备", "Workers and devices"),
        ("enrolled_at", "启用时间", "Enrolled"),
        ("last_sync", "最近同步", "Last sync"),
        ("revoke", "停用", "Revoke"),
        ("enroll", "登记新设备", "Enrol a device"),
        ("add_worker", "添加社工", "Add a worker"),
        ("worker_label", "社工代号", "Worker label"),
        ("label_hint", "用代号（如 W04），不要用全名。", "Use a label such as W04, not a full name."),
        ("new_code_for", "新设备登记码：", "Enrolment code for"),
        ("code_once", "此码只显示一次：在社工的手机上输入或扫描。", "Shown once: type or scan it on the worker's phone."),
        ("code_valid", "有效期至", "Valid until"),
        ("state_waiting", "等待登记", "waiting for its code"),
        ("state_enrolled", "使用中", "in use"),
        ("state_revoked", "已停用", "revoked"),
        ("state_expired", "登记码已过期", "code expired"),
        ("state_console", "工作台（主管）", "console (supervisor)"),
        ("history", "修改记录", "History"),
        ("current", "当前值", "current"),
        ("earlier", "曾用值", "earlier"),
        ("report", "月报", "Monthly report"),
        ("month", "月份", "Month"),
        ("show", "查看", "Show"),
        ("report_note", "按本站时区统计（日期、月份均按此时区）；走访按记录的走访日期计。本站时区：", "Counted in the station's time zone (its days and months); visits by their recorded date. The station's time zone:"),
        ("households_visited", "走访家庭数", "Households visited"),
        ("children_visited", "走访儿童数（有儿童类别）", "Children visited (with a child category)"),
        ("needs_raised", "本月新增需求", "Needs raised"),
        ("needs_met", "其中已满足", "of which met"),
        ("inquiries_answered", "其中已答复", "of which answered"),
        ("cards_issued", "发放联系卡", "Cards issued"),
        ("follow_ups_due", "本月到期跟进", "Follow-ups due"),
        ("follow_ups_done", "其中已完成", "of which done"),
        ("chart_kind", "走访方式", "Visits by kind"),
        ("chart_worker", "各社工走访", "Visits by worker"),
        ("chart_village", "各村走访", "Visits by village"),
        ("chart_category", "走访家庭类别", "Households visited by category"),
        ("chart_children", "走访儿童类别", "Children visited by category"),
        ("chart_needs", "需求类别", "Needs by category"),
        ("chart_topics", "咨询主题", "Inquiries by topic"),
        ("chart_activities", "小组活动类型", "Group activities by type"),
        ("activities", "小组活动", "Group activities"),
        ("activity_attendees", "活动参与人次", "Activity attendance"),
        ("survey_responses", "需求调查问卷", "Needs-survey responses"),
        ("activity", "小组活动", "Group activity"),
        ("activity_type", "活动类型", "Type"),
        ("place", "地点", "Place"),
        ("partners", "合作单位", "Partners"),
        ("attendance", "参与人数", "Attendance"),
        ("target_group", "服务对象", "Target group"),
        ("materials", "发放物资", "Materials"),
        ("narrative", "活动记录", "Narrative"),
        ("provenance", "记录来源", "Provenance"),
        ("previous_month", "上个月", "Previous month"),
        (
            "activities_hint",
            "按活动日期列出；参与人数为手机上记录的人数，参加的具体人员记在各自的家庭档案中。",
            "Listed by the activity's date; attendance is the count recorded on the phone, the persons who attended are linked in their own case files.",
        ),
        ("linked_resources", "参与的社区资源", "Resources involved"),
        ("resources", "社区资源台账", "Resource register"),
        ("resource_kind", "资源类型", "Kind"),
        ("resource_name", "名称", "Name"),
        ("leader", "负责人", "Leader"),
        ("members", "成员数", "Members"),
        ("availability", "可服务时间", "Availability"),
        ("services", "服务内容", "Services"),
        ("wishes", "意愿与需求", "Wishes"),
        ("linked_activities", "参与的活动", "Activities taken part in"),
        ("referred_needs", "转介到此的需求", "Needs referred here"),
        ("recorded", "记录日期", "Recorded"),
        ("surveys", "需求调查", "Needs surveys"),
        ("survey_title", "问卷", "Survey"),
        ("versions", "版本", "Versions"),
        ("version", "版本", "Version"),
        ("questions", "题", "questions"),
        ("responses", "有效问卷", "Responses"),
        ("answered", "作答", "answered"),
        ("option", "选项", "Option"),
        ("count", "人数", "Count"),
        ("sum", "合计", "Sum"),
        ("mean", "平均", "Mean"),
        ("min", "最小", "Min"),
        ("max", "最大", "Max"),
        (
            "surveys_hint",
            "有效问卷为已提交、未撤回的问卷（一人一表）。各题统计见问卷页面；统计页面不显示答卷人。",
            "Responses are those submitted and not withdrawn (one per person). Counts per question are on each survey's page, which names no respondent.",
        ),
        (
            "survey_counts_hint",
            "按版本统计已提交、未撤回的问卷：每个选项、每个分值的人数，数字题的合计与平均；文字题只计作答人数，内容见家庭档案。不显示答卷人。",
            "Counted per version over responses submitted and not withdrawn: each option and scale point, numbers' sum and mean; text questions only count who answered (the words stay in the case files). No respondent is named.",
        ),
        ("duplicate_response", "重复问卷", "Duplicate survey response"),
        ("keep_response_hint", "两部手机为同一人填写了同一问卷：保留一份，其余撤回（撤回的问卷保留在档案中，不计入统计）。", "Two phones answered the same survey for the same person: keep one, the others are withdrawn (kept in the case file, not counted)."),
        ("activities_month", "本月小组活动", "Activities this month"),
        ("kind_home", "入户走访", "Home"),
        ("kind_phone", "电话回访", "Phone"),
        ("kind_school", "学校走访", "School"),
        ("kind_neighbour_check", "邻里探访", "Neighbour check"),
        ("kind_follow_up", "跟进回访", "Follow-up"),
        ("export_xlsx", "导出 XLSX", "Export XLSX"),
        ("resolve", "确认处理", "Resolve"),
        (
            "wrong_login",
            "账号或密码错误。",
            "Wrong login or password.",
        ),
        (
            "throttled",
            "登录失败次数过多，请稍后再试。",
            "Too many failed logins: try again later.",
        ),
        ("masked", "（已遮盖）", "(masked)"),
        ("address", "地址", "Address"),
        ("name", "姓名", "Name"),
        ("relation", "关系", "Relation"),
        ("birth_date", "出生日期", "Birth date"),
        ("id_number", "身份证号", "ID number"),
        ("sex", "性别", "Sex"),
        ("guardian", "监护人", "Guardian"),
        ("tags", "标签", "Tags"),
        ("phones", "电话", "Phones"),
        ("signed_in_as", "当前账号", "Signed in as"),
        ("section", "内容", "Section"),
        (
            "record_id_hint",
            "记录编号：管理员更正或删除此记录时使用（doorstep-server household redact）",
            "Record id: an admin uses it to correct or remove this record (doorstep-server household redact)",
        ),
        ("section_personal_situation", "个人情况", "Personal situation"),
        ("section_family_situation", "家庭情况", "Family situation"),
        ("section_actual_needs", "实际需求", "Actual needs"),
        ("section_questions_asked", "咨询的问题", "Questions asked"),
        ("section_concerns", "担忧", "Concerns"),
        ("section_advice_given", "给予的建议", "Advice given"),
        ("section_health", "健康状况", "Health"),
        ("section_study", "学习情况", "Study"),
        ("erasures", "删除记录", "Erasures"),
        ("access_log", "访问记录", "Access log"),
        ("stations", "站点", "Stations"),
        ("station", "站点", "Station"),
        (
            "stations_hint",
            "县级账号：选择一个站点查看（只读）。",
            "County account: choose a station to read (read only).",
        ),
        ("no_stations", "尚未授权任何站点。", "No station granted yet."),
        ("read_only_note", "只读（县级账号）", "Read only (county account)"),
        ("cards_in_hand", "社工手中剩余联系卡", "Cards left on phones"),
        ("active_leases", "在用领用", "active leases"),
        ("low_leases", "即将用完（少于10张）", "running low (under 10)"),
        ("stock_per_lease", "各领用的联系卡库存", "Card stock per lease"),
        ("no_active_leases", "没有在用的领用。", "No active leases."),
        ("access_of", "访问此家庭档案的记录：", "Accesses to case file"),
        ("access_of_this", "谁查看过此档案", "Who opened this case file"),
        ("access_all", "全部记录", "All accesses"),
        ("assigned_to", "负责社工", "Assigned to"),
        ("team", "小组", "Team"),
        ("supervisors_only", "仅站长可见", "supervisors only"),
        ("assign", "重新分派", "Reassign"),
        (
            "assign_hint",
            "只有负责社工、其所在小组和站长的手机保存此档案；重新分派后，原负责社工的手机先上传离线修改，再删除此档案。",
            "Only the assigned worker's, their team's and supervisors' phones hold this case file; after a reassignment the old phones upload their offline edits first, then delete it.",
        ),
        ("account", "账号", "Account"),
        ("action", "操作", "Action"),
        ("who", "人员", "Who"),
        ("where", "途径", "Where"),
        ("on_console", "工作台", "Console"),
        ("on_phone", "手机", "Phone"),
        ("opened_on_phone", "在手机上打开档案", "Opened the case file"),
        (
            "access_hint",
            "工作台的每个页面和导出，以及社工在手机上打开的每份家庭档案（离线时也记录，下次同步时上传；时间为手机时间），都记录在此（账号或社工、设备、操作、家庭编号、时间），不含个人信息；删除家庭档案时一并删除其访问记录。",
            "Every console page and export, and every case file opened on a worker's phone (recorded offline too and uploaded at its next sync; the phone's clock), is recorded here (account or worker, device, action, household id, time), without personal data; erasing a household erases its entries too.",
        ),
        ("reason", "原因", "Reason"),
        ("erased_by", "操作人", "By"),
        ("reason_subject-request", "本人或监护人要求删除", "The person or guardian asked"),
        ("reason_created-in-error", "建档错误", "Created in error"),
        ("reason_retention-ended", "保存期满", "Retention period ended"),
        ("reason_other", "其他", "Other"),
        (
            "erasures_hint",
            "这些家庭档案已从服务器和所有手机上删除（包括修改历史）。此处只记录编号、时间和原因，不含个人信息。删除由管理员用命令行执行：doorstep-server household erase（见 docs/operations.md）。",
            "These case files were erased from the server and every phone, history included. Only ids, times and reasons are kept here: no personal data. An admin erases with the CLI: doorstep-server household erase (docs/operations.md).",
        ),
    ];
    pairs
        .iter()
        .map(|(k, z, e)| (*k, if zh { *z } else { *e }))
        .collect()
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn id_numbers_are_masked() {
        assert_eq!(mask_id_number("110101201001011234"), "110***********1234");
        assert_eq!(mask_id_number("1234"), "****");
    }
}
