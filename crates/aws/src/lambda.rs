//! Lambda functions as places for bait: a pair of environment variables
//! holding a honey key, added beside a function's own variables and taken
//! out again, in the account that owns the function (never the canary
//! account's credentials).

use std::collections::BTreeMap;

use aws_sdk_lambda::types::Environment;

use crate::{sdk_config, AwsError, AwsSettings, CallerIdentity};

/// A connection to the account a function lives in.
#[derive(Debug, Clone)]
pub struct Workload {
    lambda: aws_sdk_lambda::Client,
    sts: aws_sdk_sts::Client,
    endpoint: String,
}

/// A function's environment as read.
#[derive(Clone)]
pub struct FunctionEnv {
    pub arn: String,
    pub variables: BTreeMap<String, String>,
    /// Lambda's revision of the configuration read: the update is refused
    /// if someone changed the function in between.
    pub revision_id: Option<String>,
}

/// Names only: the values are the function's secrets (and ours).
impl std::fmt::Debug for FunctionEnv {
    fn fmt(&self, f: &mut std::fmt::Formatter<'_>) -> std::fmt::Result {
        f.debug_struct("FunctionEnv")
            .field("arn", &self.arn)
            .field("variables", &self.variables.keys().collect::<Vec<_>>())
            .finish_non_exhaustive()
    }
}

impl Workload {
    pub async fn connect(settings: &AwsSettings) -> Workload {
        let config = sdk_config(settings).await;
        Workload {
            lambda: aws_sdk_lambda::Client::new(&config),
            sts: aws_sdk_sts::Client::new(&config),
            endpoint: settings.endpoint.clone().unwrap_or_else(|| "AWS (default endpoints)".into()),
        }
    }

    fn fail<E>(
        &self,
        op: &'static str,
    ) -> impl FnOnce(aws_sdk_lambda::error::SdkError<E, aws_smithy_runtime_api::http::Response>) -> AwsError + '_
    where
        E: aws_sdk_lambda::error::ProvideErrorMetadata + std::error::Error + Send + Sync + 'static,
    {
        move |e| AwsError::from_sdk(op, &self.endpoint, e)
    }

    /// Who these credentials are.
    pub async fn identity(&self) -> Result<CallerIdentity, AwsError> {
        let out = self.sts.get_caller_identity().send().await.map_err(self.fail("sts:GetCallerIdentity"))?;
        Ok(CallerIdentity {
            account: out.account().unwrap_or_default().to_string(),
            arn: out.arn().unwrap_or_default().to_string(),
        })
    }

    /// `lambda:GetFunctionConfiguration`: the function's ARN, variables
    /// and revision.
    pub async fn function_env(&self, function: &str) -> Result<FunctionEnv, AwsError> {
        let out = self
            .lambda
            .get_function_configuration()
            .function_name(function)
            .send()
            .await
            .map_err(self.fail("lambda:GetFunctionConfiguration"))?;
        let variables = out
            .environment()
            .and_then(|e| e.variables())
            .map(|v| v.iter().map(|(k, v)| (k.clone(), v.clone())).collect())
            .unwrap_or_default();
        Ok(FunctionEnv {
            arn: out.function_arn().unwrap_or(function).to_string(),
            variables,
            revision_id: out.revision_id().map(str::to_string),
        })
    }

    /// `lambda:UpdateFunctionConfiguration` of the environment only, and
    /// only if the configuration is still the revision read.
    pub async fn put_function_env(&self, function: &str, env: &FunctionEnv) -> Result<(), AwsError> {
        let environment =
            Environment::builder().set_variables(Some(env.variables.clone().into_iter().collect())).build();
        self.lambda
            .update_function_configuration()
            .function_name(function)
            .environment(environment)
            .set_revision_id(env.revision_id.clone())
            .send()
            .await
            .map_err(self.fail("lambda:UpdateFunctionConfiguration"))?;
        Ok(())
    }
}
