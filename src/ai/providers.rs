//! Which provider serves a model: `[[ai.providers]]` patterns, `provider/model` names,
//! OpenAI and Anthropic from their keys, and the built-in demo provider when none is set.

use std::sync::Arc;

use super::wire::{Api, GatewayError};
use crate::config::{AiApi, AiConfig};

pub const DEMO: &str = "demo";
const OPENAI_BASE: &str = "https://api.openai.com/v1";
const ANTHROPIC_BASE: &str = "https://api.anthropic.com";

#[derive(Debug)]
pub struct Provider {
    pub name: Arc<str>,
    pub api: Api,
    /// Without a trailing slash; `None` for the demo provider.
    pub base_url: Option<String>,
    /// Stays on the server: sent only upstream, never logged or returned.
    pub api_key: Option<String>,
    /// Exact names, or prefixes ending in `*`; empty serves what nobody else claims.
    models: Vec<String>,
}

impl Provider {
    pub fn is_demo(&self) -> bool {
        self.base_url.is_none()
    }

    fn serves(&self, model: &str) -> bool {
        self.models.iter().any(|m| match m.strip_suffix('*') {
            Some(prefix) => model.starts_with(prefix),
            None => m == model,
        })
    }

    pub fn url(&self, api: Api) -> Option<String> {
        self.base_url
            .as_ref()
            .map(|b| format!("{b}{}", api.upstream_path()))
    }
}

/// A model resolved to the provider that serves it and the name it knows it by.
#[derive(Debug, Clone)]
pub struct Route {
    pub provider: Arc<Provider>,
    pub model: String,
}

pub struct Providers {
    configured: Vec<Arc<Provider>>,
    openai: Option<Arc<Provider>>,
    anthropic: Option<Arc<Provider>>,
    demo: Arc<Provider>,
}

impl Providers {
    pub fn new(c: &AiConfig) -> Providers {
        let trim = |u: &str| u.trim_end_matches('/').to_string();
        let configured = c
            .providers
            .iter()
            .map(|p| {
                Arc::new(Provider {
                    name: Arc::from(p.name.as_str()),
                    api: match p.api {
                        AiApi::Openai => Api::OpenAi,
                        AiApi::Anthropic => Api::Anthropic,
                    },
                    base_url: Some(trim(&p.base_url)),
                    api_key: p.api_key.clone().filter(|k| !k.is_empty()),
                    models: p.models.clone(),
                })
            })
            .collect();
        let builtin =
            |name: &str, api, key: &Option<String>, base: &Option<String>, default: &str| {
                (key.is_some() || base.is_some()).then(|| {
                    Arc::new(Provider {
                        name: Arc::from(name),
                        api,
                        base_url: Some(trim(base.as_deref().unwrap_or(default))),
                        api_key: key.clone().filter(|k| !k.is_empty()),
                        models: Vec::new(),
                    })
                })
            };
        Providers {
            configured,
            openai: builtin(
                "openai",
                Api::OpenAi,
                &c.openai_api_key,
                &c.openai_base_url,
                OPENAI_BASE,
            ),
            anthropic: builtin(
                "anthropic",
                Api::Anthropic,
                &c.anthropic_api_key,
                &c.anthropic_base_url,
                ANTHROPIC_BASE,
            ),
            demo: Arc::new(Provider {
                name: Arc::from(DEMO),
                api: Api::OpenAi,
                base_url: None,
                api_key: None,
                models: Vec::new(),
            }),
        }
    }

    /// Whether only the demo provider answers.
    pub fn demo_only(&self) -> bool {
        self.configured.is_empty() && self.openai.is_none() && self.anthropic.is_none()
    }

    fn all(&self) -> impl Iterator<Item = &Arc<Provider>> {
        self.configured
            .iter()
            .chain(&self.openai)
            .chain(&self.anthropic)
    }

    fn by_name(&self, name: &str) -> Option<&Arc<Provider>> {
        if name == DEMO {
            return Some(&self.demo);
        }
        self.all().find(|p| &*p.name == name)
    }

    /// The provider for `model` called through `api`.
    pub fn route(&self, model: &str, api: Api) -> Result<Route, GatewayError> {
        let found = self.find(model, api)?;
        if !found.provider.is_demo() && found.provider.api != api {
            let (other, path) = match found.provider.api {
                Api::OpenAi => ("OpenAI Chat Completions", "/v1/chat/completions"),
                Api::Anthropic => ("Anthropic Messages", "/v1/messages"),
            };
            return Err(GatewayError::BadRequest(format!(
                "model {model:?} is served by provider {:?}, which speaks the {other} API: call POST {path}",
                found.provider.name
            )));
        }
        Ok(found)
    }

    fn find(&self, model: &str, api: Api) -> Result<Route, GatewayError> {
        let route = |p: &Arc<Provider>, m: &str| Route {
            provider: p.clone(),
            model: m.to_string(),
        };
        if let Some((prefix, rest)) = model.split_once('/') {
            if let Some(p) = self.by_name(prefix) {
                return Ok(route(p, rest));
            }
        }
        if let Some(p) = self.configured.iter().find(|p| p.serves(model)) {
            return Ok(route(p, model));
        }
        let native = match api {
            Api::OpenAi if model.starts_with("claude") && self.anthropic.is_some() => {
                self.anthropic.as_ref()
            }
            Api::OpenAi => self.openai.as_ref(),
            Api::Anthropic => self.anthropic.as_ref(),
        };
        if let Some(p) = native {
            return Ok(route(p, model));
        }
        if let Some(p) = self
            .configured
            .iter()
            .find(|p| p.models.is_empty() && p.api == api)
        {
            return Ok(route(p, model));
        }
        if self.demo_only() {
            return Ok(route(&self.demo, model));
        }
        Err(GatewayError::ModelNotFound(format!(
            "no provider serves model {model:?}; list it in an [[ai.providers]] entry, set \
             OPENAI_API_KEY or ANTHROPIC_API_KEY, or name it as provider/model"
        )))
    }

    /// The API a model's provider speaks (the demo provider speaks both: OpenAI's).
    pub fn api_for(&self, model: &str) -> Api {
        match self.find(model, Api::OpenAi) {
            Ok(r) if !r.provider.is_demo() => r.provider.api,
            _ => Api::OpenAi,
        }
    }

    /// Providers whose own model list `GET /v1/models` asks for: those that serve any
    /// model they are sent (no `models` list of their own).
    pub fn open_ended(&self) -> Vec<Arc<Provider>> {
        self.all()
            .filter(|p| p.models.is_empty())
            .cloned()
            .collect()
    }

    /// Model names to list on `GET /v1/models`: configured names, or `demo` when only the
    /// demo provider answers.
    pub fn model_names(&self) -> Vec<(String, Arc<str>)> {
        let mut out: Vec<(String, Arc<str>)> = self
            .configured
            .iter()
            .flat_map(|p| {
                p.models
                    .iter()
                    .filter(|m| !m.ends_with('*'))
                    .map(|m| (m.clone(), p.name.clone()))
            })
            .collect();
        if self.demo_only() {
            out.push((DEMO.to_string(), self.demo.name.clone()));
        }
        out
    }
}

#[cfg(test)]
mod tests {
    use super::*;
    use crate::config::AiProviderConfig;

    fn ollama() -> AiProviderConfig {
        AiProviderConfig {
            name: "ollama".into(),
            base_url: "http://127.0.0.1:11434/v1/".into(),
            api_key: None,
            models: vec!["llama3.2".into(), "qwen*".into()],
            api: AiApi::Openai,
        }
    }

    #[test]
    fn demo_when_nothing_is_configured() {
        let p = Providers::new(&AiConfig::default());
        assert!(p.demo_only());
        let r = p.route("gpt-4o", Api::OpenAi).unwrap();
        assert!(r.provider.is_demo());
        assert!(p
            .route("claude-x", Api::Anthropic)
            .unwrap()
            .provider
            .is_demo());
    }

    #[test]
    fn models_route_to_their_provider() {
        let c = AiConfig {
            providers: vec![ollama()],
            openai_api_key: Some("sk-x".into()),
            anthropic_api_key: Some("sk-ant".into()),
            ..AiConfig::default()
        };
        let p = Providers::new(&c);
        assert_eq!(
            &*p.route("llama3.2", Api::OpenAi).unwrap().provider.name,
            "ollama"
        );
        assert_eq!(
            &*p.route("qwen2.5:7b", Api::OpenAi).unwrap().provider.name,
            "ollama"
        );
        assert_eq!(
            &*p.route("gpt-4o", Api::OpenAi).unwrap().provider.name,
            "openai"
        );
        assert_eq!(
            &*p.route("claude-3-5-haiku", Api::Anthropic)
                .unwrap()
                .provider
                .name,
            "anthropic"
        );
        let r = p.route("ollama/mistral", Api::OpenAi).unwrap();
        assert_eq!((&*r.provider.name, r.model.as_str()), ("ollama", "mistral"));
        assert_eq!(
            r.provider.url(Api::OpenAi).unwrap(),
            "http://127.0.0.1:11434/v1/chat/completions"
        );
        let e = p.route("claude-3-5-haiku", Api::OpenAi).unwrap_err();
        assert!(e.to_string().contains("/v1/messages"), "{e}");
        assert!(p
            .route("demo/anything", Api::OpenAi)
            .unwrap()
            .provider
            .is_demo());
    }

    #[test]
    fn unknown_model_is_404_when_providers_exist() {
        let c = AiConfig {
            providers: vec![ollama()],
            ..AiConfig::default()
        };
        let p = Providers::new(&c);
        let e = p.route("gpt-4o", Api::OpenAi).unwrap_err();
        assert_eq!(e.status(), 404);
    }
}
