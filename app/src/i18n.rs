//! The interface's two languages. Every visible string is a [`Msg`]; [`Msg::text`] gives it
//! in English or Chinese. The language comes from the `qc_lang` cookie, else the browser's
//! `Accept-Language`; the server renders it into `<html lang>` and the browser reads it back
//! from there when hydrating, so both sides always agree.
use leptos::prelude::*;

use crate::error::{ApiError, ErrorCode};

/// The cookie that remembers the chosen language.
pub const LANG_COOKIE: &str = "qc_lang";

#[derive(Debug, Clone, Copy, PartialEq, Eq, Default)]
pub enum Lang {
    #[default]
    En,
    Zh,
}

impl Lang {
    /// The BCP 47 tag written into `<html lang>`.
    pub fn tag(self) -> &'static str {
        match self {
            Lang::En => "en",
            Lang::Zh => "zh-CN",
        }
    }

    /// The short code stored in the cookie.
    pub fn code(self) -> &'static str {
        match self {
            Lang::En => "en",
            Lang::Zh => "zh",
        }
    }

    /// Reads a cookie code or a language tag ("zh", "zh-CN", "en-GB", ...).
    pub fn parse(value: &str) -> Option<Lang> {
        let value = value.trim().to_ascii_lowercase();
        if value.starts_with("zh") {
            Some(Lang::Zh)
        } else if value.starts_with("en") {
            Some(Lang::En)
        } else {
            None
        }
    }

    /// The first supported language of an `Accept-Language` header, by quality.
    pub fn from_accept_language(header: &str) -> Option<Lang> {
        let mut choices: Vec<(f32, Lang)> = header
            .split(',')
            .filter_map(|part| {
                let mut it = part.split(';');
                let lang = Lang::parse(it.next()?)?;
                let q = it
                    .find_map(|p| p.trim().strip_prefix("q="))
                    .and_then(|q| q.parse::<f32>().ok())
                    .unwrap_or(1.0);
                Some((q, lang))
            })
            .collect();
        choices.sort_by(|a, b| b.0.total_cmp(&a.0));
        choices.first().map(|c| c.1)
    }
}

macro_rules! messages {
    ($($key:ident => $en:literal, $zh:literal;)*) => {
        /// Every string the interface shows.
        #[derive(Debug, Clone, Copy, PartialEq, Eq)]
        pub enum Msg { $($key),* }

        impl Msg {
            pub fn text(self, lang: Lang) -> &'static str {
                match (self, lang) {
                    $((Msg::$key, Lang::En) => $en, (Msg::$key, Lang::Zh) => $zh,)*
                }
            }
        }
    };
}

messages! {
    AppName => "quick-chat", "快聊";
    Tagline => "Chat, share and call with the people you know.", "与熟悉的人聊天、分享和通话。";
    Login => "Log in", "登录";
    LoggingIn => "Logging in…", "正在登录…";
    Register => "Create account", "注册";
    Registering => "Creating account…", "正在注册…";
    Username => "Username", "用户名";
    UsernameHint => "3–32 letters, digits or _", "3–32 个字母、数字或下划线";
    Nickname => "Nickname", "昵称";
    Password => "Password", "密码";
    PasswordHint => "At least 8 characters", "至少 8 个字符";
    NoAccount => "No account yet?", "还没有账号？";
    HaveAccount => "Already have an account?", "已有账号？";
    Chats => "Chats", "消息";
    Contacts => "Contacts", "通讯录";
    Me => "Me", "我";
    Search => "Search", "搜索";
    NoChats => "No conversations yet", "还没有会话";
    NoChatsHint => "Add a friend in Contacts to start chatting.", "在通讯录中添加好友即可开始聊天。";
    NoContacts => "No contacts yet", "还没有联系人";
    NoContactsHint => "Friends and groups you join will appear here.", "你的好友和加入的群组会显示在这里。";
    PickChat => "Select a conversation to start messaging", "选择一个会话开始聊天";
    PickContact => "Select a contact to see their card", "选择联系人查看名片";
    Profile => "Profile", "个人资料";
    EditProfile => "Edit profile", "编辑资料";
    Gender => "Gender", "性别";
    GenderUnspecified => "Not set", "未设置";
    GenderMale => "Male", "男";
    GenderFemale => "Female", "女";
    Signature => "Signature", "个性签名";
    SignatureEmpty => "No signature yet", "还没有个性签名";
    Mobile => "Mobile", "手机号";
    Save => "Save", "保存";
    Saving => "Saving…", "正在保存…";
    Saved => "Saved", "已保存";
    ChangePassword => "Change password", "修改密码";
    CurrentPassword => "Current password", "当前密码";
    NewPassword => "New password", "新密码";
    ConfirmPassword => "Confirm new password", "确认新密码";
    PasswordsDiffer => "The two new passwords do not match.", "两次输入的新密码不一致。";
    PasswordChanged => "Password changed. Your other devices have been signed out.", "密码已修改，其他设备已退出登录。";
    Language => "Language", "语言";
    LanguageHint => "The interface language on this browser.", "此浏览器上的界面语言。";
    Logout => "Log out", "退出登录";
    Sessions => "Devices", "登录设备";
    SessionsHint => "Where your account is signed in. Sign out any you do not recognise, and change your password.", "你的账号在以下位置登录。若有不认识的设备，请将其退出并修改密码。";
    ThisDevice => "This device", "本机";
    UnknownDevice => "Unknown device", "未知设备";
    LastActive => "Active", "最近活动";
    SignOutDevice => "Sign out", "退出";
    SignOutOthers => "Sign out everywhere else", "退出其他所有设备";
    OthersSignedOut => "Every other device has been signed out.", "其他设备均已退出登录。";
    Back => "Back", "返回";
    Loading => "Loading…", "加载中…";
    NotFound => "Page not found", "页面不存在";
    GoHome => "Go to quick-chat", "返回快聊";
    Joined => "Joined", "注册于";
    AddFriendOrGroup => "Add friend / group", "添加好友 / 群组";
    NewFriends => "New friends", "新的朋友";
    NoRequests => "No new requests", "暂无新的请求";
    Groups => "Groups", "群组";
    NoGroups => "You are not in any group yet", "还没有加入任何群组";
    Friends => "Friends", "好友";
    NoFriends => "No friends yet. Use + to find people.", "还没有好友，点击 + 查找用户。";
    RemovedYouSection => "Removed you", "已将你删除";
    RemovedYou => "removed you", "已将你删除";
    Accept => "Accept", "接受";
    Decline => "Decline", "拒绝";
    Approve => "Approve", "同意";
    SendMessage => "Send message", "发消息";
    RemoveFriend => "Remove friend", "删除好友";
    ConfirmRemove => "Yes, remove", "确认删除";
    Remove => "Remove", "移除";
    WantsToBeFriends => "wants to be your friend:", "请求添加你为好友：";
    RequestSent => "Request sent, waiting for an answer.", "请求已发送，等待对方回应。";
    Withdraw => "Withdraw", "撤回";
    UpdateRequest => "Send again with this note", "用此附言重新发送";
    AddFriend => "Add friend", "添加好友";
    Dismiss => "Dismiss", "忽略";
    RequestNote => "Note", "附言";
    RequestNoteHint => "Say who you are", "介绍一下你自己";
    ThisIsYou => "This is you.", "这是你自己。";
    AskToJoin => "Ask to join", "申请加入";
    LeaveGroup => "Leave group", "退出群组";
    MemberOne => "member", "位成员";
    MemberMany => "members", "位成员";
    JoinRequests => "Asking to join", "入群申请";
    Members => "Members", "成员";
    OwnerLabel => "Owner", "群主";
    MakeOwner => "Make owner", "设为群主";
    EditGroup => "Edit group", "编辑群组";
    GroupName => "Group name", "群名称";
    GroupDescription => "Description", "群简介";
    Dissolve => "Dissolve group", "解散群组";
    ConfirmDissolve => "Yes, dissolve it for everyone", "确认解散（所有成员）";
    FindPeople => "Find people", "找人";
    FindGroups => "Find groups", "找群";
    CreateGroup => "Create group", "创建群组";
    SearchPeopleHint => "Username", "用户名";
    SearchGroupsHint => "Group name or ID", "群名称或群 ID";
    NoResults => "Nothing found", "没有找到结果";
    Close => "Close", "关闭";
    Connecting => "Connecting…", "连接中…";
    OfflineRetrying => "Offline, reconnecting…", "已断开，正在重连…";
    ChatNeedsJs => "Chatting needs JavaScript: turn it on for this site to see and send messages.", "聊天需要 JavaScript：请为本站启用后再查看和发送消息。";
    SomeoneInGroup => "A member", "一位成员";
    TooManyConnections => "Open in too many tabs or devices. Close one; retrying…", "打开的标签页或设备过多，请关闭一些；稍后重试…";
    EnableNotifications => "Enable notifications", "开启通知";
    You => "You", "我";
    Online => "online", "在线";
    LastSeen => "last seen", "最近在线";
    GroupChat => "Group chat", "群聊";
    SomeoneTyping => "Someone is typing…", "有人正在输入…";
    IsTyping => "is typing…", "正在输入…";
    StateSending => "sending", "发送中";
    StateSent => "sent", "已发送";
    StateRead => "read", "已读";
    StateFailed => "failed", "发送失败";
    TapToRetry => "Tap to retry.", "点击重试。";
    DeleteUnsent => "Delete", "删除";
    NotFriendsNotice => "You are not friends any more: messages here are not delivered. Add each other again in", "你们已不是好友，这里的消息无法送达。可在此重新添加好友：";
    TypeMessage => "Type a message. Enter sends, Shift+Enter adds a line.", "输入消息，Enter 发送，Shift+Enter 换行。";
    Send => "Send", "发送";
    NoMessagesYet => "No messages yet. Say hello!", "还没有消息，打个招呼吧！";
    VideoCall => "Video call", "视频通话";
    AudioCall => "Voice call", "语音通话";
    IncomingVideo => "is inviting you to a video call", "邀请你视频通话";
    IncomingAudio => "is inviting you to a voice call", "邀请你语音通话";
    Calling => "Calling…", "正在呼叫…";
    Ringing => "Ringing…", "对方响铃中…";
    CallConnecting => "Connecting…", "正在接通…";
    CallReconnecting => "Reconnecting…", "正在重新连接…";
    AnswerCall => "Accept", "接听";
    Cancel => "Cancel", "取消";
    HangUp => "Hang up", "挂断";
    Mute => "Mute", "静音";
    Unmute => "Unmute", "取消静音";
    CameraOff => "Camera off", "关闭摄像头";
    CameraOn => "Camera on", "打开摄像头";
    Microphone => "Microphone", "麦克风";
    Camera => "Camera", "摄像头";
    CallDeclined => "Declined", "已拒绝";
    CallCancelled => "Cancelled", "已取消";
    CallMissed => "No answer", "无人接听";
    CallBusy => "Busy — in another call", "对方忙线中";
    CallEnded => "Call ended", "通话结束";
    CallFailed => "Connection lost", "连接中断";
    CallAnsweredElsewhere => "Answered on another device", "已在其他设备接听";
    MissedVideoCall => "Missed video call", "未接视频通话";
    MissedAudioCall => "Missed voice call", "未接语音通话";
    CancelledCall => "Cancelled call", "已取消的通话";
    DeclinedCall => "Declined call", "已拒绝的通话";
    BusyCall => "Call not answered (busy)", "对方忙线";
    FailedCall => "Call dropped", "通话中断";
    QualityGood => "Good connection", "网络良好";
    QualityFair => "Fair connection", "网络一般";
    QualityPoor => "Poor connection", "网络较差";
    NoDevice => "No camera or microphone was found.", "未找到摄像头或麦克风。";
    DeviceDenied => "Camera or microphone access was denied. Allow it in the browser and try again.", "摄像头或麦克风权限被拒绝，请在浏览器中允许后重试。";
    DeviceError => "The camera or microphone could not be started.", "无法启动摄像头或麦克风。";
    CallNotPossible => "The call could not be started.", "无法发起通话。";
    ErrBadRequest => "The request was not understood.", "请求格式有误。";
    ErrInvalidField => "Please check this field.", "请检查填写的内容。";
    ErrTooLarge => "That is too large.", "内容过大。";
    ErrQuota => "Your storage is full. Ask the administrator for more.", "你的存储空间已满，请联系管理员。";
    ErrBadImage => "This picture is damaged or too large to show.", "图片已损坏或过大，无法显示。";
    ImagePreview => "[Picture]", "[图片]";
    FilePreview => "[File]", "[文件]";
    Download => "Download", "下载";
    Attach => "Send a picture or file", "发送图片或文件";
    ChangeAvatar => "Change picture", "更换头像";
    RemoveAvatar => "Use initials", "使用默认头像";
    CropTitle => "Choose the square to show", "选择要显示的区域";
    CropHint => "Drag the picture or use the arrow keys; zoom with the slider, the wheel or + and −. Enter uses it, Esc cancels.", "拖动图片或使用方向键移动；用滑块、滚轮或 + 和 − 缩放。回车确定，Esc 取消。";
    Zoom => "Zoom", "缩放";
    UsePicture => "Use this picture", "使用这张图片";
    Uploading => "Uploading", "正在上传";
    UploadFailed => "Not sent", "发送失败";
    UploadWaiting => "Waiting for the connection; it goes on by itself", "等待网络连接，恢复后自动继续";
    Retry => "Retry", "重试";
    Previous => "Previous picture", "上一张";
    Next => "Next picture", "下一张";
    ZoomIn => "Show at full size (click or +); scroll or swipe to move around", "按原始大小查看（点击或 +），滚动或滑动查看其他部分";
    ZoomOut => "Fit to the screen (click or −)", "适应屏幕（点击或 −）";
    ErrUnauthorized => "Please log in again.", "请重新登录。";
    ErrInvalidCredentials => "The username or password is incorrect.", "用户名或密码错误。";
    ErrWrongPassword => "The current password is incorrect.", "当前密码不正确。";
    ErrBanned => "This account has been suspended.", "该账号已被停用。";
    ErrForbidden => "You are not allowed to do that.", "你没有权限执行此操作。";
    ErrNotFound => "Not found.", "未找到。";
    ErrUsernameTaken => "This username is already taken.", "该用户名已被占用。";
    ErrConflict => "That conflicts with a recent change. Please reload.", "与最近的修改冲突，请刷新后重试。";
    ErrTooMany => "Too many attempts. Please wait a moment and try again.", "尝试次数过多，请稍后再试。";
    ErrUnavailable => "The server is busy. Please try again.", "服务器繁忙，请重试。";
    ErrInternal => "Something went wrong. Please try again.", "出错了，请重试。";
    ErrNetwork => "Cannot reach the server. Check your connection.", "无法连接服务器，请检查网络。";
    ErrUserNotFound => "There is no user with this username.", "没有找到该用户。";
    ErrCannotAddSelf => "You cannot add yourself.", "不能添加自己为好友。";
    ErrAlreadyFriends => "You are already friends.", "你们已经是好友了。";
    ErrNotFriends => "You are not friends.", "你们还不是好友。";
    ErrAlreadyMember => "You are already in this group.", "你已经在该群组中。";
    ErrNotMember => "Not a member of this group.", "不是该群组成员。";
    ErrNotOwner => "Only the group owner may do this.", "只有群主可以执行此操作。";
    ErrOwnerCannotLeave => "The owner cannot leave; hand the group over first.", "群主不能退出，请先转让群组。";
    ErrGroupFull => "This group is full.", "该群组已满员。";
    ErrMessageTooLong => "The message is too long (at most 4,000 characters).", "消息过长（最多 4000 个字符）。";
    ErrRateLimited => "You are sending too fast. Wait a moment.", "发送太快了，请稍等片刻。";
    ErrUnsupported => "This client sent a request the server does not read. Please reload.", "客户端发送了服务器无法处理的请求，请刷新页面。";
    FieldUsername => "A username has 3 to 32 letters a–z, digits or underscores.", "用户名由 3–32 个字母 a–z、数字或下划线组成。";
    FieldNickname => "A nickname has 1 to 32 characters on one line.", "昵称为 1–32 个字符，且只能一行。";
    FieldPassword => "A password has 8 to 128 characters.", "密码为 8–128 个字符。";
    FieldSignature => "A signature has at most 100 characters on one line.", "个性签名最多 100 个字符，且只能一行。";
    FieldMobile => "A mobile number has 5 to 20 digits and may contain +, - and spaces.", "手机号为 5–20 位数字，可包含 +、- 和空格。";
    FieldGender => "Choose one of the offered options.", "请选择给出的选项之一。";
    FieldMemo => "A note has at most 100 characters on one line.", "附言最多 100 个字符，且只能一行。";
    FieldGroupName => "A group name has 1 to 32 characters on one line.", "群名称为 1–32 个字符，且只能一行。";
    FieldDescription => "A description has at most 200 characters, without control characters.", "群简介最多 200 个字符，且不能包含控制字符。";
    FieldAvatar => "An avatar is an http(s) address or a path on this site.", "头像须为 http(s) 地址或本站路径。";
    FieldQuery => "The search text is too long or contains control characters.", "搜索内容过长或包含控制字符。";
}

impl Msg {
    /// The localized sentence for an API error code.
    /// The rule of an input field, by the `field` an `invalid_field` error names.
    pub fn for_field(field: Option<&str>) -> Msg {
        match field.unwrap_or("") {
            "username" => Msg::FieldUsername,
            "nickname" => Msg::FieldNickname,
            "password" | "new_password" | "current_password" => Msg::FieldPassword,
            "signature" => Msg::FieldSignature,
            "mobile" => Msg::FieldMobile,
            "gender" => Msg::FieldGender,
            "memo" => Msg::FieldMemo,
            "name" => Msg::FieldGroupName,
            "description" => Msg::FieldDescription,
            "avatar" | "media" => Msg::FieldAvatar,
            "query" => Msg::FieldQuery,
            _ => Msg::ErrInvalidField,
        }
    }

    pub fn for_error(code: ErrorCode) -> Msg {
        match code {
            ErrorCode::BadRequest => Msg::ErrBadRequest,
            ErrorCode::InvalidField => Msg::ErrInvalidField,
            ErrorCode::PayloadTooLarge => Msg::ErrTooLarge,
            ErrorCode::QuotaExceeded => Msg::ErrQuota,
            ErrorCode::BadImage => Msg::ErrBadImage,
            ErrorCode::Unauthorized => Msg::ErrUnauthorized,
            ErrorCode::InvalidCredentials => Msg::ErrInvalidCredentials,
            ErrorCode::WrongPassword => Msg::ErrWrongPassword,
            ErrorCode::AccountBanned => Msg::ErrBanned,
            ErrorCode::Forbidden => Msg::ErrForbidden,
            ErrorCode::NotFound => Msg::ErrNotFound,
            ErrorCode::UsernameTaken => Msg::ErrUsernameTaken,
            ErrorCode::Conflict => Msg::ErrConflict,
            ErrorCode::TooManyRequests => Msg::ErrTooMany,
            ErrorCode::Unavailable => Msg::ErrUnavailable,
            ErrorCode::Network => Msg::ErrNetwork,
            ErrorCode::UserNotFound => Msg::ErrUserNotFound,
            ErrorCode::CannotAddSelf => Msg::ErrCannotAddSelf,
            ErrorCode::AlreadyFriends => Msg::ErrAlreadyFriends,
            ErrorCode::NotFriends => Msg::ErrNotFriends,
            ErrorCode::AlreadyMember => Msg::ErrAlreadyMember,
            ErrorCode::NotMember => Msg::ErrNotMember,
            ErrorCode::NotOwner => Msg::ErrNotOwner,
            ErrorCode::OwnerCannotLeave => Msg::ErrOwnerCannotLeave,
            ErrorCode::GroupFull => Msg::ErrGroupFull,
            ErrorCode::MessageTooLong | ErrorCode::FrameTooLarge => Msg::ErrMessageTooLong,
            ErrorCode::RateLimited => Msg::ErrRateLimited,
            ErrorCode::BadFrame | ErrorCode::UnknownType => Msg::ErrBadRequest,
            ErrorCode::UnsupportedMediaType => Msg::ErrUnsupported,
            ErrorCode::Internal | ErrorCode::Unknown => Msg::ErrInternal,
        }
    }
}

/// The language in use, provided as context by the app root.
#[derive(Debug, Clone, Copy)]
pub struct I18n {
    pub lang: RwSignal<Lang>,
}

impl I18n {
    pub fn t(self, msg: Msg) -> &'static str {
        msg.text(self.lang.get())
    }

    /// An error as the user should read it: always this interface's own words for the code
    /// (and, for a field, the rule of that field), never the server's `message`. An error can
    /// arrive in the page's address (a form posted without JavaScript comes back with it), so
    /// its text is whatever whoever wrote the link wanted; only the code is believed.
    pub fn error(self, err: &ApiError) -> String {
        let lang = self.lang.get();
        match err.code {
            ErrorCode::InvalidField => Msg::for_field(err.field.as_deref()).text(lang).to_owned(),
            ErrorCode::TooManyRequests => match err.retry_after {
                Some(s) if s <= 24 * 3600 && lang == Lang::Zh => {
                    format!("尝试次数过多，请在 {s} 秒后再试。")
                }
                Some(s) if s <= 24 * 3600 => {
                    format!("Too many attempts. Please try again in {s} seconds.")
                }
                _ => Msg::ErrTooMany.text(lang).to_owned(),
            },
            code => Msg::for_error(code).text(lang).to_owned(),
        }
    }

    /// The word after a number of members: "1 member", "2 members", "2 位成员".
    pub fn members(self, count: u64) -> &'static str {
        self.t(if count == 1 {
            Msg::MemberOne
        } else {
            Msg::MemberMany
        })
    }

    /// Switches the language and remembers it in a cookie for a year.
    pub fn set(self, lang: Lang) {
        self.lang.set(lang);
        #[cfg(feature = "hydrate")]
        {
            use wasm_bindgen::JsCast;
            if let Some(doc) = web_sys::window().and_then(|w| w.document())
                && let Ok(html) = doc.dyn_into::<web_sys::HtmlDocument>()
            {
                let _ = html.set_cookie(&format!(
                    "{LANG_COOKIE}={}; Path=/; Max-Age=31536000; SameSite=Lax",
                    lang.code()
                ));
            }
        }
    }
}

/// The [`I18n`] of the app.
pub fn use_i18n() -> I18n {
    use_context::<I18n>().unwrap_or_else(|| I18n {
        lang: RwSignal::new(Lang::En),
    })
}

/// The language for the page being served: the cookie, else `Accept-Language`, else English.
#[cfg(feature = "ssr")]
pub fn request_lang() -> Lang {
    let Some(parts) = use_context::<http::request::Parts>() else {
        return Lang::En;
    };
    if let Some(lang) =
        crate::ssr::auth::cookie_value(&parts.headers, LANG_COOKIE).and_then(|c| Lang::parse(&c))
    {
        return lang;
    }
    parts
        .headers
        .get(http::header::ACCEPT_LANGUAGE)
        .and_then(|v| v.to_str().ok())
        .and_then(Lang::from_accept_language)
        .unwrap_or_default()
}

/// The language the server rendered, read back from `<html lang>` while hydrating.
#[cfg(not(feature = "ssr"))]
pub fn request_lang() -> Lang {
    #[cfg(feature = "hydrate")]
    {
        web_sys::window()
            .and_then(|w| w.document())
            .and_then(|d| d.document_element())
            .and_then(|e| e.get_attribute("lang"))
            .and_then(|l| Lang::parse(&l))
            .unwrap_or_default()
    }
    #[cfg(not(feature = "hydrate"))]
    Lang::En
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn accept_language_prefers_the_highest_quality_supported_tag() {
        assert_eq!(
            Lang::from_accept_language("zh-CN,zh;q=0.9,en;q=0.8"),
            Some(Lang::Zh)
        );
        assert_eq!(
            Lang::from_accept_language("fr-FR, en;q=0.5, zh;q=0.4"),
            Some(Lang::En)
        );
        assert_eq!(Lang::from_accept_language("de"), None);
        assert_eq!(
            Lang::from_accept_language("en;q=0.2, zh-TW;q=0.9"),
            Some(Lang::Zh)
        );
    }
}
