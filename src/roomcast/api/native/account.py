"""Native API: console sessions, the account's apps and its key pairs."""

from __future__ import annotations

from datetime import datetime

from fastapi import APIRouter, Request, Response
from pydantic import BaseModel, Field

from roomcast.api.native.auth import SESSION_COOKIE, SESSION_TTL_S, check_key, sessions
from roomcast.api.native.common import ERRORS, PREFIX, NativeRoute, TenantDep
from roomcast.domain.errors import NotFound
from roomcast.domain.tenancy import ApiKey, App, AppState
from roomcast.runtime import Runtime


class SessionIn(BaseModel):
    secret_id: str = Field(min_length=1, max_length=128, examples=["AKIDz8krbsJ5yKBZQpn74WFkmLPx3EXAMPLE"])
    secret_key: str = Field(min_length=1, max_length=256, examples=["Gu5t9xGARNpq86cd98joQYCN3EXAMPLE"])


class AccountOut(BaseModel):
    account_id: str
    project_id: str
    name: str
    secret_id: str = Field(description="The key pair this caller signed in with.")


class AppOut(BaseModel):
    app_id: str = Field(description="String id (SparkRTC).")
    sdk_app_id: int = Field(description="Integer id (TRTC SdkAppId, JOYY appid).")
    name: str
    state: AppState
    created_at: datetime
    updated_at: datetime
    callback_url: str | None = None

    @classmethod
    def of(cls, app: App) -> AppOut:
        return cls(
            app_id=app.app_id,
            sdk_app_id=app.sdk_app_id,
            name=app.name,
            state=app.state,
            created_at=app.created_at,
            updated_at=app.updated_at,
            callback_url=app.callback_url,
        )


class AppWithKey(AppOut):
    app_key: str = Field(description="Signs room-join tokens (UserSig, JWT). Keep it secret.")


class AppIn(BaseModel):
    name: str = Field(min_length=1, max_length=64, examples=["live-classes"])


class CallbackIn(BaseModel):
    url: str | None = Field(default=None, examples=["https://example.test/trtc-callbacks"])
    key: str | None = Field(default=None, description="Signs the callbacks (vendor signature).")


class KeyOut(BaseModel):
    secret_id: str
    status: str
    created_at: datetime
    revoked_at: datetime | None = None

    @classmethod
    def of(cls, k: ApiKey) -> KeyOut:
        return cls(
            secret_id=k.secret_id, status=k.status.value, created_at=k.created_at, revoked_at=k.revoked_at
        )


class KeyCreated(BaseModel):
    secret_id: str
    secret_key: str = Field(description="Shown only in this answer.")


def build_router() -> APIRouter:
    router = APIRouter(prefix=PREFIX, tags=["native: account"], route_class=NativeRoute, responses=ERRORS)

    @router.post("/session", response_model=AccountOut)
    async def sign_in(request: Request, response: Response, body: SessionIn) -> AccountOut:
        """Sign in to the console with a key pair: sets an HttpOnly session cookie."""
        rt: Runtime = request.app.state.runtime
        who = await check_key(rt, body.secret_id, body.secret_key)
        token = sessions(request).open(who.secret_id)
        response.set_cookie(
            SESSION_COOKIE,
            token,
            max_age=SESSION_TTL_S,
            httponly=True,
            samesite="strict",
            secure=request.url.scheme == "https",
            path="/",
        )
        account = await rt.tenancy.get_account(who.account_id)
        return AccountOut(
            account_id=who.account_id, project_id=who.project_id, name=account.name, secret_id=who.secret_id
        )

    @router.delete("/session", status_code=204)
    async def sign_out(request: Request, response: Response) -> Response:
        """End the console session."""
        token = request.cookies.get(SESSION_COOKIE)
        if token:
            sessions(request).close(token)
        out = Response(status_code=204)
        out.delete_cookie(SESSION_COOKIE, path="/")
        return out

    @router.get("/account", response_model=AccountOut)
    async def whoami(t: TenantDep) -> AccountOut:
        """The calling account."""
        account = await t.rt.tenancy.get_account(t.who.account_id)
        return AccountOut(
            account_id=account.account_id,
            project_id=account.project_id,
            name=account.name,
            secret_id=t.who.secret_id,
        )

    @router.get("/apps", response_model=list[AppOut])
    async def list_apps(t: TenantDep) -> list[AppOut]:
        """The account's apps (without keys)."""
        return [AppOut.of(a) for a in await t.apps()]

    @router.post("/apps", response_model=AppWithKey, status_code=201)
    async def create_app(body: AppIn, t: TenantDep) -> AppWithKey:
        """Create an app; the answer includes its app_key."""
        app = await t.rt.tenancy.create_app(t.who.account_id, body.name)
        return AppWithKey(**AppOut.of(app).model_dump(), app_key=app.app_key)

    @router.get("/apps/{app}", response_model=AppWithKey)
    async def get_app(app: str, t: TenantDep) -> AppWithKey:
        """One app by sdk_app_id or app_id, with its app_key."""
        a = await t.app(app)
        return AppWithKey(**AppOut.of(a).model_dump(), app_key=a.app_key)

    @router.post("/apps/{app}/enable", response_model=AppOut)
    async def enable_app(app: str, t: TenantDep) -> AppOut:
        a = await t.app(app)
        return AppOut.of(await t.rt.tenancy.set_app_state(a.app_id, AppState.ENABLED, t.who.account_id))

    @router.post("/apps/{app}/disable", response_model=AppOut)
    async def disable_app(app: str, t: TenantDep) -> AppOut:
        """New joins and new tasks are refused while an app is disabled."""
        a = await t.app(app)
        return AppOut.of(await t.rt.tenancy.set_app_state(a.app_id, AppState.DISABLED, t.who.account_id))

    @router.delete("/apps/{app}", status_code=204)
    async def delete_app(app: str, t: TenantDep) -> Response:
        """Delete an app for good (its ids are never reused)."""
        a = await t.app(app)
        await t.rt.tenancy.delete_app(a.app_id, t.who.account_id)
        return Response(status_code=204)

    @router.put("/apps/{app}/callback", response_model=AppOut)
    async def set_callback(app: str, body: CallbackIn, t: TenantDep) -> AppOut:
        """Where the app's event callbacks go (null url: nowhere), and the key that signs them."""
        a = await t.app(app)
        return AppOut.of(await t.rt.tenancy.set_callback(a.app_id, body.url or None, body.key))

    @router.get("/keys", response_model=list[KeyOut])
    async def list_keys(t: TenantDep) -> list[KeyOut]:
        """The account's key pairs (secret keys are never shown again)."""
        return [KeyOut.of(k) for k in await t.rt.tenancy.list_keys(t.who.account_id)]

    @router.post("/keys", response_model=KeyCreated, status_code=201)
    async def create_key(t: TenantDep) -> KeyCreated:
        """A new key pair; the secret key is in this answer only."""
        creds = await t.rt.tenancy.create_key(t.who.account_id)
        return KeyCreated(secret_id=creds.secret_id, secret_key=creds.secret_key)

    @router.post("/keys/{secret_id}/revoke", response_model=KeyOut)
    async def revoke_key(secret_id: str, t: TenantDep) -> KeyOut:
        """Requests signed with this key are refused from now on (console sessions too)."""
        if secret_id not in {k.secret_id for k in await t.rt.tenancy.list_keys(t.who.account_id)}:
            raise NotFound(f"key {secret_id} does not exist", subject="key")
        return KeyOut.of(await t.rt.tenancy.revoke_key(secret_id))

    return router
