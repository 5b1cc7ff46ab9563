//! SCIM reads: one resource (RFC 7644 §3.4.1) and lists and searches with filters, paging
//! and attribute selection (§3.4.2, §3.4.3), each from one consistent snapshot.

use serde_json::{Value, json};

use super::Provisioning;
use super::context::{Ctx, ListQuery, Resource, not_found};
use super::render::{group_view, render_group, render_user, user_view};
use crate::domain::scim::filter::{self, Cond};
use crate::domain::scim::{LIST_RESPONSE, ResourceType, ScimError};
use crate::store::{ReadTx, StoreError};

impl Provisioning {
    /// GET `/{Users|Groups}/{id}`.
    pub async fn get(
        &self,
        ctx: &Ctx,
        rt: ResourceType,
        id: &str,
        q: &ListQuery,
    ) -> Result<Resource, ScimError> {
        let sel = q.selection(rt);
        let (realm, key) = (ctx.realm.clone(), id.to_owned());
        let resource = match rt {
            ResourceType::User => {
                let want = sel.wants("groups");
                let view = self
                    .store
                    .read(move |tx: &dyn ReadTx| {
                        tx.scim_user(&realm, &key)?
                            .map(|r| user_view(tx, r, want))
                            .transpose()
                            .map_err(ScimError::from)
                    })
                    .await?
                    .ok_or_else(|| not_found(rt, id))?;
                render_user(ctx, &view)
            }
            ResourceType::Group => {
                let want = sel.wants("members");
                let view = self
                    .store
                    .read(move |tx: &dyn ReadTx| {
                        tx.scim_group(&realm, &key)?
                            .map(|r| group_view(tx, r, want))
                            .transpose()
                            .map_err(ScimError::from)
                    })
                    .await?
                    .ok_or_else(|| not_found(rt, id))?;
                render_group(ctx, &view)
            }
        };
        Ok(Resource {
            body: sel.apply(resource.body),
            ..resource
        })
    }

    /// GET `/{Users|Groups}` and POST `/.search`: a ListResponse (RFC 7644 §3.4.2).
    pub async fn list(
        &self,
        ctx: &Ctx,
        rt: ResourceType,
        q: &ListQuery,
    ) -> Result<Value, ScimError> {
        let (start, count) = q.page()?;
        let cond: Option<Cond> = q
            .filter
            .as_deref()
            .filter(|f| !f.trim().is_empty())
            .map(|f| filter::compile(rt, f))
            .transpose()?;
        let sel = q.selection(rt);
        let realm = ctx.realm.clone();
        let offset = start - 1;
        let (total, resources) = match rt {
            ResourceType::User => {
                let want = sel.wants("groups");
                let (total, views) = self
                    .store
                    .read(move |tx: &dyn ReadTx| {
                        let page = tx.scim_users_page(&realm, cond.as_ref(), offset, count)?;
                        let views = page
                            .items
                            .into_iter()
                            .map(|r| user_view(tx, r, want))
                            .collect::<Result<Vec<_>, StoreError>>()?;
                        Ok::<_, ScimError>((page.total, views))
                    })
                    .await?;
                (
                    total,
                    views
                        .iter()
                        .map(|v| sel.apply(render_user(ctx, v).body))
                        .collect::<Vec<_>>(),
                )
            }
            ResourceType::Group => {
                let want = sel.wants("members");
                let (total, views) = self
                    .store
                    .read(move |tx: &dyn ReadTx| {
                        let page = tx.scim_groups_page(&realm, cond.as_ref(), offset, count)?;
                        let views = page
                            .items
                            .into_iter()
                            .map(|r| group_view(tx, r, want))
                            .collect::<Result<Vec<_>, StoreError>>()?;
                        Ok::<_, ScimError>((page.total, views))
                    })
                    .await?;
                (
                    total,
                    views
                        .iter()
                        .map(|v| sel.apply(render_group(ctx, v).body))
                        .collect::<Vec<_>>(),
                )
            }
        };
        // Entra's Test Connection expects 200 with totalResults 0 and an empty Resources (IdP quirk S6).
        Ok(json!({
            "schemas": [LIST_RESPONSE],
            "totalResults": total,
            "startIndex": start,
            "itemsPerPage": resources.len(),
            "Resources": resources,
        }))
    }
}
