# 聊天室的简体中文文本（Fluent 语法：https://projectfluent.org/fluent/guide/）。
# 这里的每个键都必须与 en/main.ftl 一一对应（tests/locales.rs 会检查）。

raw = { $text }
app-title = 聊天室
room-title = #{ $room } · 聊天室
status-title = 状态 · 聊天室
language = 语言
loading = 加载中…
cancel = 取消
go-to-lobby = 返回大厅
not-found-heading = 页面不存在
not-found-text = 聊天室的地址是 { $path }。

## Connection and presence
conn-connecting = 正在连接…
conn-online = 在线
conn-reconnecting = 正在重新连接…
conn-offline = 离线
online-count = { $count ->
   *[other] { $count } 人在线
}
members-heading = 成员
members-button = 成员，{ $count ->
   *[other] { $count } 人在线
}
members-more = 还有 { $count } 人
leave-room = 离开聊天室
room-label = 聊天室
cannot-open-room = 无法打开这个聊天室
notice-reset = 你离开期间错过了很多消息，现在显示最新的消息。
notice-joined = { $name } 加入了
notice-left = { $name } 离开了
typing-one = { $name } 正在输入…
typing-two = { $first } 和 { $second } 正在输入…
typing-many = { $count ->
   *[other] { $count } 人正在输入…
}

## Joining
join-heading = 加入聊天室
join-name = 昵称
join-name-placeholder = 你的名字
join-avatar = 头像
join-submit = 加入
join-online-now = 当前在线
join-recent = 最近的消息
join-could-not = 无法加入：{ $error }
join-name-length = 名字须为 1–{ $max } 个字符
join-name-invisible = 名字不能包含控制字符或不可见字符
join-name-mixed-scripts = 名字混用了外形相似的字母（例如拉丁字母和西里尔字母），请只用一种
join-room-name = 聊天室名称须为 1–{ $max } 个字符，只能包含 a–z、0–9 和 -
join-pick-avatar = 请选择一个头像
join-restarting = 服务器正在重启，请稍后再试
join-unavailable = 聊天服务暂时无法保存消息，请稍后再试
join-name-taken = 这个名字在本聊天室已被占用
join-room-full = 这个聊天室已满
join-too-many-joins = 你的地址加入次数过多，请一分钟后再试
join-too-many-reservations = 你的地址占用了太多尚未使用的名字，请一分钟后再试
join-too-many-new-rooms = 你的地址新建的聊天室过多，请加入已有的聊天室或稍后再试
join-too-many-rooms = 本服务器的聊天室数已达上限，请加入已有的聊天室
join-refused = 这个聊天室不允许你加入

## The composer
composer-label = 消息
composer-label-edit = 编辑消息
composer-placeholder = 输入消息…（按 Enter 发送，Shift+Enter 换行）
composer-send = 发送
composer-save = 保存
composer-editing = 正在编辑消息 · 按 Esc 取消
composer-cancel-edit = 取消编辑
composer-replying = 回复
composer-cancel-reply = 取消回复
text-empty = 消息不能为空
text-too-long = 消息不能超过 { $max } 个字符
text-control = 消息包含控制字符
block-removed = 你已不在这个聊天室
block-muted-forever = 你已被禁言，直到管理员解除
block-muted-until = 你已被禁言，直到 { $time }
block-locked = 这个聊天室为只读
block-slow = { $count } 秒后可以再次发送

## Messages
message-removed = 已被管理员删除
message-deleted = 消息已删除
more-actions = 更多操作
edited = （已编辑）
edited-at = 编辑于 { $time }
reply-to-deleted = 回复一条已删除的消息
reply-go-to = 跳到 { $name } 的消息：{ $text }
load-older = 加载更早的消息
mentions-you = 提到了你
new-messages = 新消息
menu-reply = 回复
menu-react = 表情回应
menu-edit = 编辑
menu-delete = 删除
menu-remove = 移除
delete-question = 删除消息？
delete-confirm = 删除这条消息？此操作无法撤销。
remove-question = 移除消息？
remove-confirm = 为所有人移除这条消息？
reason-optional = 原因（可选）
react-with = 用 { $emoji } 回应
any-emoji = 任意一个表情
add = 添加
enter-one-emoji = 请输入一个表情

## Errors from the server
error-not-sent = 未发送：{ $error }
error-not-changed = 未修改：{ $error }
error-bad-request = 服务器无法理解这个请求
error-session-invalid = 你的会话已结束，请重新加入
error-already-joined = 已经加入
error-name-taken = 这个名字在本聊天室已被占用
error-room-full = 这个聊天室已满
error-empty-message = 消息不能为空
error-message-too-long = 消息太长
error-invalid-text = 消息包含控制字符
error-storage-failed = 消息无法保存，请重试
error-busy = 服务器繁忙，请稍后再试
error-rate-limited = 发送太快了，请慢一点
error-not-author = 只有作者可以修改这条消息
error-no-such-message = 这条消息已不存在
error-invalid-emoji = 表情回应必须是一个表情
error-too-many-reactions = 这条消息的表情回应已达上限
error-not-moderator = 只有本聊天室的管理员可以这样做
error-no-such-member = 这里没有这个名字的成员
error-muted = 你在这个聊天室已被禁言
error-locked = 这个聊天室为只读
error-slow-mode = 慢速模式：请稍等片刻再发送
error-banned = 你已被禁止进入这个聊天室
error-invalid-token = 这个链接无效（已使用、已过期或属于其他名字）

## Notifications
notify-off = 有人提到我时通知我
notify-on = 此标签页在后台时，有人提到你会通知你
notify-blocked = 浏览器设置已禁止本站发送通知

## Moderation
operator-subject = 系统管理员
operator-object = 系统管理员
reason-suffix = ：{ $reason }
span-for = ，为期 { $duration }
span-until-unmuted = ，直到解除
span-for-good = ，永久
duration-minutes = { $count ->
   *[other] { $count } 分钟
}
duration-hours = { $count ->
   *[other] { $count } 小时
}
duration-days = { $count ->
   *[other] { $count } 天
}
interval-s = { $count } 秒
interval-min = { $count } 分钟
full-stop = 。
removed-banned = 你已被禁止进入这个聊天室{ $why }
removed-banned-until = 你已被禁止进入这个聊天室，直到 { $time }{ $why }
removed-kicked = 你已被管理员移出聊天室{ $why }
mod-remove = { $who } 移除了一条消息{ $why }
mod-clear = { $who } 移除了 { $member } 最近的 { $count ->
   *[other] { $count } 条消息
}{ $why }
mod-mute = { $who } 将 { $member } 禁言{ $span }{ $why }
mod-unmute = { $who } 解除了 { $member } 的禁言
mod-kick = { $member } 被 { $by } 移出了聊天室{ $why }
mod-ban = { $who } 封禁了 { $member }{ $span }{ $why }
mod-unban = { $who } 解除了对 { $member } 的封禁
mod-topic-cleared = { $who } 清除了话题
mod-topic = { $who } 将话题设为：{ $text }
mod-lock = { $who } 锁定了聊天室
mod-unlock = { $who } 解锁了聊天室
mod-slow-off = 慢速模式已关闭
mod-slow = 慢速模式：每 { $interval } 一条消息
mod-role-owner = { $member } 现在是房主
mod-role-moderator = { $member } 现在是管理员
mod-role-none = { $member } 不再是管理员
audit-remove = 移除了一条消息
audit-clear = 移除了最近的 { $count ->
   *[other] { $count } 条消息
}
audit-mute = 禁言{ $span }
audit-unmute = 解除禁言
audit-kick = 移出
audit-ban = 封禁{ $span }{ $address }
audit-address = ，包括其地址
audit-unban = 解除封禁
audit-topic-cleared = 清除了话题
audit-topic = 将话题设为：{ $text }
audit-lock = 锁定了聊天室
audit-unlock = 解锁了聊天室
audit-slow-off = 关闭了慢速模式
audit-slow = 将慢速模式设为 { $interval }
audit-role-owner = 设为房主
audit-role-moderator = 设为管理员
audit-role-none = 取消管理员
moderate = 管理
moderate-room = 管理聊天室
moderate-member = 管理 { $name }
topic = 话题
set-topic = 设置话题
lock-room = 锁定聊天室
unlock-room = 解锁聊天室
slow-mode = 慢速模式
slow-mode-off = 关闭
slow-mode-badge = 慢速模式：{ $interval }
slow-mode-hint = 在这个间隔内每位成员只能发一条消息
read-only = 🔒 只读
read-only-hint = 只有管理员可以在这个聊天室发言
unban = 解除封禁
name = 名字
audit-log = 审计日志
audit-empty = 暂无记录。
audit-when = 时间
audit-who = 操作者
audit-what = 操作
audit-whom = 对象
audit-why = 原因
audit-load-failed = 无法加载审计日志
audit-forbidden = 只有本聊天室的管理员可以查看审计日志
audit-none = 这个服务器没有审计日志
pane-mute = 禁言
pane-unmute = 解除禁言
pane-kick = 移出
pane-ban = 封禁
pane-clear = 清除消息
pane-title = { $verb } { $name }
item-mute = 禁言…
item-kick = 移出…
item-ban = 封禁…
item-clear = 清除最近的消息…
until-unmuted = 直到解除
forever = 永久
last-minutes = 最近 { $count } 分钟
also-address = 同时封禁其地址
rejoin = 重新加入
owner-link = 你创建了这个聊天室。请保存这个房主链接：
claim-now = 立即认领
dismiss-owner-link = 关闭房主链接

## The status page
status-heading = 服务器状态
status-stale = 服务器没有响应，显示的是最后一次的数据。
status-none = 暂无数据。
status-connections = 连接数
status-rooms = 聊天室
status-rooms-value = { $rooms }（{ $members ->
   *[other] { $members } 名成员
}）
status-messages = 每秒消息数
status-chart = { $title }，最近 { $count } 秒，最高 { $top }
uptime-s = { $s } 秒
uptime-min = { $min } 分钟
uptime-h = { $h } 小时 { $min } 分钟
conversation = 对话
join-nobody = 还没有人，来做第一个吧。
go = 前往
original-deleted = 原消息已删除
sending = 正在发送
for-how-long = 时长
message-actions = 消息操作
pick-reaction = 选择表情回应
audit-caption = 管理操作（最新的在前）
status-meta = 版本 { $version } · 已运行 { $uptime }
you = 你
sending-lower = 发送中…
reactions = 表情回应
members-to-mention = 可提及的成员
avatar-fox = 狐狸
avatar-owl = 猫头鹰
avatar-cat = 猫
avatar-frog = 青蛙
avatar-bear = 熊
avatar-panda = 熊猫
avatar-robot = 机器人
avatar-alien = 外星人
avatar-ghost = 幽灵
avatar-cactus = 仙人掌
avatar-octopus = 章鱼
avatar-penguin = 企鹅
avatar-tiger = 老虎
avatar-koala = 考拉
avatar-unicorn = 独角兽
avatar-astronaut = 宇航员
mod-error-reason = 原因最多 { $max } 个字符
mod-error-topic = 话题最多 { $max } 个字符，且只能一行
mod-error-slow = 慢速模式为 0 到 { $max } 秒
mod-error-minutes = 时长为 1 到 { $max } 分钟，或不设结束
mod-error-clear = 清除范围为最近 1 到 { $max } 分钟
mod-error-name = 请填写成员名字
meta-description = 实时聊天室：选一个名字和头像，看看谁在线，然后开始聊天。
close-members = 关闭成员列表
messages = 消息
