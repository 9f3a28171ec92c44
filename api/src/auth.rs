//! Accounts and sessions: `signUp`, `logIn`, `me`, `tenant`; argon2 password hashes and
//! HS256 session tokens with expiry and a pinned algorithm.

use crate::{
    error::{ApiError, ApiResult, GqlResult},
    state::AppState,
};
use argon2::{
    Argon2, PasswordHash, PasswordHasher, PasswordVerifier,
    password_hash::{SaltString, rand_core::OsRng},
};
use async_graphql::{Context, InputObject, Object, SimpleObject};
use chrono::{DateTime, Utc};
use jsonwebtoken::{Algorithm, DecodingKey, EncodingKey, Header, Validation};
use leadrelay_entity::{Role, membership, tenant, user};
use leadrelay_worker::ids::new_id;
use sea_orm::{
    ActiveValue::Set, ColumnTrait, DatabaseConnection, EntityTrait, QueryFilter, QueryOrder,
    SqlErr, TransactionTrait,
};
use serde::{Deserialize, Serialize};

/// How long a session token is valid.
const TOKEN_LIFETIME: chrono::Duration = chrono::Duration::hours(24);

/// The verified caller of a request.
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct Auth {
    pub user_id: String,
    pub tenant_id: String,
    pub role: Role,
}

#[derive(Debug, Serialize, Deserialize)]
struct Claims {
    sub: String,
    tid: String,
    role: Role,
    iat: i64,
    exp: i64,
}

/// Signs and verifies session tokens (HS256 only).
pub struct Jwt {
    encoding: EncodingKey,
    decoding: DecodingKey,
}

impl Jwt {
    /// Keys from the shared secret.
    pub fn new(secret: &[u8]) -> Self {
        Self {
            encoding: EncodingKey::from_secret(secret),
            decoding: DecodingKey::from_secret(secret),
        }
    }

    /// A session token for `auth`.
    pub fn issue(&self, auth: &Auth) -> ApiResult<String> {
        let now = Utc::now();
        let claims = Claims {
            sub: auth.user_id.clone(),
            tid: auth.tenant_id.clone(),
            role: auth.role,
            iat: now.timestamp(),
            exp: (now + TOKEN_LIFETIME).timestamp(),
        };
        jsonwebtoken::encode(&Header::new(Algorithm::HS256), &claims, &self.encoding)
            .map_err(|e| ApiError::internal("signing a session token", e))
    }

    /// The caller named by a token, if the token is valid, unexpired and HS256.
    pub fn verify(&self, token: &str) -> ApiResult<Auth> {
        let validation = Validation::new(Algorithm::HS256);
        let data = jsonwebtoken::decode::<Claims>(token, &self.decoding, &validation)
            .map_err(|_| ApiError::Unauthenticated("invalid or expired token".into()))?;
        Ok(Auth {
            user_id: data.claims.sub,
            tenant_id: data.claims.tid,
            role: data.claims.role,
        })
    }
}

/// The verified caller, or `UNAUTHENTICATED`.
pub fn auth<'a>(ctx: &Context<'a>) -> ApiResult<&'a Auth> {
    ctx.data_opt::<Option<Auth>>()
        .and_then(Option::as_ref)
        .ok_or_else(|| {
            ApiError::Unauthenticated("sign in: send Authorization: Bearer <token>".into())
        })
}

/// A GraphQL guard: the caller's role must be at least this one.
pub struct RequireRole(pub Role);

fn rank(role: Role) -> u8 {
    match role {
        Role::Member => 0,
        Role::Admin => 1,
        Role::Owner => 2,
    }
}

impl async_graphql::Guard for RequireRole {
    async fn check(&self, ctx: &Context<'_>) -> async_graphql::Result<()> {
        let auth = auth(ctx).map_err(crate::error::GqlError::from)?;
        if rank(auth.role) >= rank(self.0) {
            Ok(())
        } else {
            let needed = format!("{:?}", self.0).to_uppercase();
            Err(crate::error::GqlError::from(ApiError::Forbidden(format!(
                "this needs the {needed} role or higher"
            )))
            .into())
        }
    }
}

/// What a subscription starts from: the caller's tenant and the shared state, with the
/// optional `list_id` checked to be the tenant's (another tenant's reads as not found).
pub async fn subscriber(
    ctx: &Context<'_>,
    list_id: Option<&async_graphql::ID>,
) -> Result<(String, AppState), crate::error::GqlError> {
    let (auth, app) = (auth(ctx)?, state(ctx).clone());
    if let Some(id) = list_id {
        crate::tenancy::get_for_tenant::<leadrelay_entity::list::Entity>(
            &app.db,
            &auth.tenant_id,
            id,
        )
        .await?;
    }
    Ok((auth.tenant_id.clone(), app))
}

/// The shared state from the GraphQL context.
pub fn state<'a>(ctx: &Context<'a>) -> &'a AppState {
    ctx.data_unchecked::<AppState>()
}

/// A signed-in person.
#[derive(SimpleObject, Clone)]
pub struct User {
    pub id: String,
    pub email: String,
    pub created_at: DateTime<Utc>,
}

impl From<user::Model> for User {
    fn from(m: user::Model) -> Self {
        Self {
            id: m.id,
            email: m.email,
            created_at: m.created_at,
        }
    }
}

/// A customer account.
#[derive(SimpleObject, Clone)]
pub struct Tenant {
    pub id: String,
    pub name: String,
    pub created_at: DateTime<Utc>,
}

impl From<tenant::Model> for Tenant {
    fn from(m: tenant::Model) -> Self {
        Self {
            id: m.id,
            name: m.name,
            created_at: m.created_at,
        }
    }
}

/// A session: its token and who it is for.
#[derive(SimpleObject)]
pub struct AuthPayload {
    pub token: String,
    pub user: User,
    pub tenant: Tenant,
    pub role: Role,
}

#[derive(InputObject)]
pub struct SignUpInput {
    pub email: String,
    pub password: String,
    pub tenant_name: String,
}

#[derive(InputObject)]
pub struct LogInInput {
    pub email: String,
    pub password: String,
}

fn normalise_email(raw: &str) -> ApiResult<String> {
    let email = raw.trim().to_lowercase();
    match email.split_once('@') {
        Some((local, domain))
            if !local.is_empty()
                && domain.contains('.')
                && !domain.starts_with('.')
                && email.len() <= 254 =>
        {
            Ok(email)
        }
        _ => Err(ApiError::BadInput(
            "email: not a valid email address".into(),
        )),
    }
}

async fn hash_password(password: String) -> ApiResult<String> {
    tokio::task::spawn_blocking(move || {
        Argon2::default()
            .hash_password(password.as_bytes(), &SaltString::generate(&mut OsRng))
            .map(|h| h.to_string())
    })
    .await
    .map_err(|e| ApiError::internal("hashing a password", e))?
    .map_err(|e| ApiError::internal("hashing a password", e))
}

async fn password_matches(password: String, hash: String) -> bool {
    tokio::task::spawn_blocking(move || {
        PasswordHash::new(&hash).is_ok_and(|parsed| {
            Argon2::default()
                .verify_password(password.as_bytes(), &parsed)
                .is_ok()
        })
    })
    .await
    .unwrap_or(false)
}

async fn session(
    state: &AppState,
    user: user::Model,
    tenant: tenant::Model,
    role: Role,
) -> ApiResult<AuthPayload> {
    let token = state.jwt.issue(&Auth {
        user_id: user.id.clone(),
        tenant_id: tenant.id.clone(),
        role,
    })?;
    Ok(AuthPayload {
        token,
        user: user.into(),
        tenant: tenant.into(),
        role,
    })
}

async fn sign_up(state: &AppState, input: SignUpInput) -> ApiResult<AuthPayload> {
    let email = normalise_email(&input.email)?;
    if input.password.chars().count() < 8 {
        return Err(ApiError::BadInput(
            "password: must be at least 8 characters".into(),
        ));
    }
    let tenant_name = crate::input::name("tenantName", &input.tenant_name)?;
    let hash = hash_password(input.password).await?;
    let now = Utc::now();
    let tenant = tenant::Model {
        id: new_id("ten"),
        name: tenant_name,
        created_at: now,
    };
    let user = user::Model {
        id: new_id("usr"),
        email,
        password_hash: hash,
        created_at: now,
    };
    let txn = state.db.begin().await?;
    tenant::Entity::insert(tenant::ActiveModel::from(tenant.clone()))
        .exec_without_returning(&txn)
        .await?;
    let inserted = user::Entity::insert(user::ActiveModel::from(user.clone()))
        .exec_without_returning(&txn)
        .await;
    if let Err(e) = inserted {
        return Err(match e.sql_err() {
            Some(SqlErr::UniqueConstraintViolation(_)) => {
                ApiError::Conflict("email: an account with this email already exists".into())
            }
            _ => e.into(),
        });
    }
    membership::Entity::insert(membership::ActiveModel {
        id: Set(new_id("mem")),
        tenant_id: Set(tenant.id.clone()),
        user_id: Set(user.id.clone()),
        role: Set(Role::Owner),
        created_at: Set(now),
    })
    .exec_without_returning(&txn)
    .await?;
    txn.commit().await?;
    session(state, user, tenant, Role::Owner).await
}

async fn log_in(state: &AppState, input: LogInInput) -> ApiResult<AuthPayload> {
    let denied = || ApiError::Unauthenticated("invalid email or password".into());
    let email = input.email.trim().to_lowercase();
    let found = user::Entity::find()
        .filter(user::Column::Email.eq(&email))
        .one(&state.db)
        .await?;
    let Some(user) = found else {
        // Spend the same time as a real check, so timing does not reveal accounts.
        let _ = hash_password(input.password).await;
        return Err(denied());
    };
    if !password_matches(input.password, user.password_hash.clone()).await {
        return Err(denied());
    }
    let (membership, tenant) = first_membership(&state.db, &user.id)
        .await?
        .ok_or_else(denied)?;
    session(state, user, tenant, membership.role).await
}

async fn first_membership(
    db: &DatabaseConnection,
    user_id: &str,
) -> ApiResult<Option<(membership::Model, tenant::Model)>> {
    let Some(m) = membership::Entity::find()
        .filter(membership::Column::UserId.eq(user_id))
        .order_by_asc(membership::Column::CreatedAt)
        .one(db)
        .await?
    else {
        return Ok(None);
    };
    Ok(tenant::Entity::find_by_id(&m.tenant_id)
        .one(db)
        .await?
        .map(|t| (m, t)))
}

/// `signUp` and `logIn`.
#[derive(Default)]
pub struct AuthMutation;

#[Object]
impl AuthMutation {
    /// Creates a tenant and its first user, the OWNER, and signs in.
    async fn sign_up(&self, ctx: &Context<'_>, input: SignUpInput) -> GqlResult<AuthPayload> {
        Ok(sign_up(state(ctx), input).await?)
    }

    /// Signs in with email and password.
    async fn log_in(&self, ctx: &Context<'_>, input: LogInInput) -> GqlResult<AuthPayload> {
        Ok(log_in(state(ctx), input).await?)
    }
}

/// `me` and `tenant`.
#[derive(Default)]
pub struct AuthQuery;

#[Object]
impl AuthQuery {
    /// The signed-in user.
    async fn me(&self, ctx: &Context<'_>) -> GqlResult<User> {
        let auth = auth(ctx)?;
        let user = user::Entity::find_by_id(&auth.user_id)
            .one(&state(ctx).db)
            .await?;
        Ok(user
            .map(User::from)
            .ok_or_else(|| ApiError::Unauthenticated("the account no longer exists".into()))?)
    }

    /// The tenant the session belongs to.
    async fn tenant(&self, ctx: &Context<'_>) -> GqlResult<Tenant> {
        let auth = auth(ctx)?;
        let tenant = tenant::Entity::find_by_id(&auth.tenant_id)
            .one(&state(ctx).db)
            .await?;
        Ok(tenant
            .map(Tenant::from)
            .ok_or_else(|| ApiError::Unauthenticated("the tenant no longer exists".into()))?)
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    fn alice() -> Auth {
        Auth {
            user_id: "usr_1".into(),
            tenant_id: "ten_1".into(),
            role: Role::Owner,
        }
    }

    #[test]
    fn issued_tokens_verify() {
        let jwt = Jwt::new(&[7; 32]);
        let token = jwt.issue(&alice()).unwrap();
        assert_eq!(jwt.verify(&token).unwrap(), alice());
    }

    #[test]
    fn another_secret_is_refused() {
        let token = Jwt::new(&[7; 32]).issue(&alice()).unwrap();
        assert!(Jwt::new(&[8; 32]).verify(&token).is_err());
    }

    #[test]
    fn expired_and_other_algorithms_are_refused() {
        let secret = [7; 32];
        let old = Claims {
            sub: "u".into(),
            tid: "t".into(),
            role: Role::Owner,
            iat: 0,
            exp: 1000,
        };
        let key = EncodingKey::from_secret(&secret);
        let expired = jsonwebtoken::encode(&Header::new(Algorithm::HS256), &old, &key).unwrap();
        assert!(Jwt::new(&secret).verify(&expired).is_err());
        let fresh = Claims {
            exp: Utc::now().timestamp() + 600,
            ..old
        };
        let hs512 = jsonwebtoken::encode(&Header::new(Algorithm::HS512), &fresh, &key).unwrap();
        assert!(Jwt::new(&secret).verify(&hs512).is_err());
    }

    #[test]
    fn emails_are_normalised_and_checked() {
        assert_eq!(
            normalise_email("  Ana@Example.COM ").unwrap(),
            "ana@example.com"
        );
        assert!(normalise_email("not-an-email").is_err());
        assert!(normalise_email("a@b").is_err());
    }
}
