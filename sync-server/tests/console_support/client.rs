//! A client that signs in and keeps its cookies like a browser without scripts: pages,
//! forms, redirects not followed (the tests look at them).

use reqwest::header;

use super::form;

pub struct Browser {
    client: reqwest::Client,
    url: String,
    cookies: Vec<(String, String)>,
    /// Sent as `X-Forwarded-For`, as a proxy in front of the console would.
    forwarded_for: Option<String>,
}

impl Browser {
    pub fn new(url: String) -> Self {
        Browser {
            client: reqwest::Client::builder()
                .redirect(reqwest::redirect::Policy::none())
                .build()
                .unwrap(),
            url,
            cookies: Vec::new(),
            forwarded_for: None,
        }
    }

    /// A browser at `client`, behind a proxy that says so in `X-Forwarded-For`.
    pub fn behind_proxy(url: String, client: &str) -> Self {
        Browser {
            forwarded_for: Some(client.to_owned()),
            ..Browser::new(url)
        }
    }

    fn request(&self, r: reqwest::RequestBuilder) -> reqwest::RequestBuilder {
        let r = r.header(header::COOKIE, self.cookie_header());
        match &self.forwarded_for {
            Some(client) => r.header("x-forwarded-for", client),
            None => r,
        }
    }

    fn cookie_header(&self) -> String {
        self.cookies
            .iter()
            .map(|(k, v)| format!("{k}={v}"))
            .collect::<Vec<_>>()
            .join("; ")
    }

    fn keep_cookies(&mut self, resp: &reqwest::Response) -> Vec<String> {
        let mut raw = Vec::new();
        for v in resp.headers().get_all(header::SET_COOKIE) {
            let v = v.to_str().unwrap().to_owned();
            let (kv, _) = v.split_once(';').unwrap_or((&v, ""));
            let (k, val) = kv.split_once('=').unwrap();
            self.cookies.retain(|(n, _)| n != k);
            if !val.is_empty() {
                self.cookies.push((k.to_owned(), val.to_owned()));
            }
            raw.push(v);
        }
        raw
    }

    pub async fn get(&mut self, path: &str) -> (u16, String, reqwest::header::HeaderMap) {
        let resp = self
            .request(self.client.get(format!("{}{path}", self.url)))
            .send()
            .await
            .unwrap();
        self.keep_cookies(&resp);
        let status = resp.status().as_u16();
        let headers = resp.headers().clone();
        (status, resp.text().await.unwrap(), headers)
    }

    pub async fn post(&mut self, path: &str, body: String) -> (u16, String, Vec<String>) {
        let resp = self
            .request(self.client.post(format!("{}{path}", self.url)))
            .header(header::CONTENT_TYPE, "application/x-www-form-urlencoded")
            .body(body)
            .send()
            .await
            .unwrap();
        let set = self.keep_cookies(&resp);
        let status = resp.status().as_u16();
        let location = resp
            .headers()
            .get(header::LOCATION)
            .map(|l| l.to_str().unwrap().to_owned());
        let mut set = set;
        if let Some(l) = location {
            set.push(format!("location: {l}"));
        }
        (status, resp.text().await.unwrap(), set)
    }

    /// The value of a hidden `csrf` input on a page.
    pub fn csrf_of(page: &str) -> String {
        let at = page.find("name=\"csrf\" value=\"").expect("a csrf field") + 19;
        page[at..].split('"').next().unwrap().to_owned()
    }

    pub async fn login(&mut self, login: &str, password: &str) -> (u16, String, Vec<String>) {
        let (status, page, _) = self.get("/console/login").await;
        assert_eq!(status, 200);
        let csrf = Self::csrf_of(&page);
        self.post(
            "/console/login",
            form(&[("csrf", &csrf), ("login", login), ("password", password)]),
        )
        .await
    }
}
